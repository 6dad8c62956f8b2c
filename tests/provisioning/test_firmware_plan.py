"""esptool's part of `provision flash --firmware`: what it is asked to do (no board needed).

Writing to a real board is in hil_tests/test_firmware_on_board.py (real board only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldline_provision.errors import FirmwareWriteFailed, UsageError
from fieldline_provision.firmware import (
    FAST_BAUD,
    chip_key,
    firmware_offset,
    firmware_plan,
    write_calls,
)


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "ESP32_GENERIC-v1.24.1.bin"
    path.write_bytes(b"\xe9" + bytes(4095))
    return path


@pytest.mark.parametrize(
    ("chip", "offset"),
    [
        ("ESP32", 0x1000),
        ("ESP32-S2", 0x1000),
        ("ESP32-S3", 0x0),
        ("ESP32-C3", 0x0),
        ("ESP32-C3 (QFN32)", 0x0),
        ("ESP32-C6", 0x0),
    ],
)
def test_micropython_goes_to_the_chips_bootloader_offset(chip, offset):
    assert firmware_offset(chip) == offset


def test_an_unknown_chip_is_refused_with_a_way_out():
    with pytest.raises(FirmwareWriteFailed, match="flash it with esptool by hand"):
        firmware_offset("ESP8266")


def test_chip_names_normalise():
    assert chip_key("ESP32-S3") == "esp32s3"
    assert chip_key("ESP32-D0WD-V3 (revision v3.1)") == "esp32d0wdv3"


def test_calls_erase_then_write_at_the_offset_then_reset(image):
    plan = firmware_plan("/dev/ttyUSB0", image)
    assert plan.chip == "auto" and plan.baud == FAST_BAUD
    calls = write_calls(plan, "ESP32")
    assert [name for name, _ in calls] == [
        "run_stub",
        "change_baud",
        "attach_flash",
        "erase_flash",
        "write_flash",
        "reset_chip",
    ]
    assert dict(calls)["write_flash"] == {"addr_data": [(0x1000, str(image))]}
    assert dict(calls)["reset_chip"] == {"reset_mode": "hard-reset"}
    assert dict(write_calls(plan, "ESP32-S3"))["write_flash"]["addr_data"][0][0] == 0


def test_a_chip_can_be_forced(image):
    assert firmware_plan("/dev/ttyUSB0", image, chip="ESP32-S3").chip == "esp32s3"
    with pytest.raises(UsageError, match="--chip esp8266"):
        firmware_plan("/dev/ttyUSB0", image, chip="esp8266")


def test_missing_or_wrong_images_are_refused_before_touching_the_board(tmp_path, image):
    with pytest.raises(UsageError, match="no such file"):
        firmware_plan("/dev/ttyUSB0", tmp_path / "nope.bin")
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(UsageError, match="expected a .bin"):
        firmware_plan("/dev/ttyUSB0", elf)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"PK\x03\x04")
    with pytest.raises(UsageError, match="0xE9"):
        firmware_plan("/dev/ttyUSB0", garbage)


class FakeChip:
    """What esptool's connect_esp/run_stub return, recording what it is asked."""

    CHIP_NAME = "ESP32"

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log
        self._port = self

    def change_baud(self, baud):
        self.log.append(("change_baud", self.name, baud))

    def close(self):
        self.log.append(("close", self.name))


def test_write_firmware_makes_the_planned_calls_on_the_stub(image, monkeypatch):
    # esptool's functions stand in for a board; the order and the targets are the point.
    from esptool import cmds

    from fieldline_provision.firmware import write_firmware

    log: list = []
    rom, stub = FakeChip("rom", log), FakeChip("stub", log)
    monkeypatch.setattr(cmds, "connect_esp", lambda port, chip: rom)
    monkeypatch.setattr(cmds, "run_stub", lambda esp: log.append(("run_stub", esp.name)) or stub)
    for name in ("attach_flash", "erase_flash"):
        monkeypatch.setattr(cmds, name, lambda esp, _n=name: log.append((_n, esp.name)))
    monkeypatch.setattr(cmds, "write_flash", lambda esp, a: log.append(("write", esp.name, a)))
    monkeypatch.setattr(cmds, "reset_chip", lambda esp, m: log.append(("reset", esp.name, m)))

    said: list[str] = []
    assert write_firmware(firmware_plan("/dev/ttyUSB0", image), say=said.append) == "ESP32"
    assert log == [
        ("run_stub", "rom"),
        ("change_baud", "stub", FAST_BAUD),
        ("attach_flash", "stub"),
        ("erase_flash", "stub"),
        ("write", "stub", [(0x1000, str(image))]),
        ("reset", "stub", "hard-reset"),
        ("close", "stub"),
    ]
    assert said[0] == "chip: ESP32" and said[-1] == "esptool: reset chip"
