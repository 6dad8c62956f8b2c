"""Writing MicroPython to a board with esptool's Python API (never by parsing its output).

`firmware_plan()` decides what esptool is asked to do (tested without a board);
`write_firmware()` does it on a real board: connect (chip detected), erase, write at the
chip's MicroPython offset with esptool's own progress output, hard reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fieldline_provision.errors import FirmwareWriteFailed, UsageError

# Where MicroPython's combined image (bootloader + partitions + app) starts, per chip:
# the chips whose ROM loads the bootloader from 0x1000 and those that load it from 0x0.
FIRMWARE_OFFSET = {
    "esp32": 0x1000,
    "esp32s2": 0x1000,
    "esp32s3": 0x0,
    "esp32c3": 0x0,
    "esp32c6": 0x0,
    "esp32h2": 0x0,
    "esp32c2": 0x0,
    "esp32p4": 0x2000,
}
FAST_BAUD = 460800


@dataclass(frozen=True)
class FirmwarePlan:
    port: str
    image: Path
    chip: str = "auto"
    baud: int = FAST_BAUD
    erase_first: bool = True


def chip_key(chip_description: str) -> str:
    """esptool's CHIP_NAME ('ESP32-S3', 'ESP32-C3 (QFN32)') -> 'esp32s3'."""
    head = chip_description.split("(")[0].strip().lower()
    return head.replace("-", "").replace(" ", "")


def firmware_offset(chip_description: str) -> int:
    key = chip_key(chip_description)
    if key not in FIRMWARE_OFFSET:
        raise FirmwareWriteFailed(
            f"no known MicroPython offset for chip {chip_description}: flash it with "
            "esptool by hand (see micropython.org/download for the address)"
        )
    return FIRMWARE_OFFSET[key]


def firmware_plan(
    port: str, image: str | Path, chip: str = "auto", baud: int = FAST_BAUD
) -> FirmwarePlan:
    path = Path(image)
    if not path.is_file():
        raise UsageError(
            f"--firmware {image}: no such file; download MicroPython for your board "
            "from https://micropython.org/download/ (a .bin)"
        )
    if path.suffix.lower() != ".bin":
        raise UsageError(f"--firmware {image}: expected a .bin image from micropython.org")
    data = path.read_bytes()[:1]
    if data != b"\xe9":
        raise UsageError(
            f"--firmware {image}: not an ESP32 firmware image (it must start with 0xE9)"
        )
    chip = chip.lower().replace("-", "")
    if chip != "auto" and chip not in FIRMWARE_OFFSET:
        raise UsageError(f"--chip {chip}: use auto or one of {', '.join(FIRMWARE_OFFSET)}")
    return FirmwarePlan(port=port, image=path, chip=chip, baud=baud)


def write_calls(plan: FirmwarePlan, chip_description: str) -> list[tuple[str, dict]]:
    """The esptool.cmds calls, in order, once the chip is known (what the unit tests check)."""
    calls: list[tuple[str, dict]] = [
        ("run_stub", {}),
        ("change_baud", {"baud": plan.baud}),
        ("attach_flash", {}),
    ]
    if plan.erase_first:
        calls.append(("erase_flash", {}))
    offset = firmware_offset(chip_description)
    calls.append(("write_flash", {"addr_data": [(offset, str(plan.image))]}))
    calls.append(("reset_chip", {"reset_mode": "hard-reset"}))
    return calls


def _run_call(cmds, esp, name: str, kwargs: dict):
    """One call of write_calls() through esptool; returns the esp to use next (run_stub
    gives a new one, talking to the stub instead of the ROM)."""
    if name == "run_stub":
        return cmds.run_stub(esp)
    if name == "change_baud":
        esp.change_baud(kwargs["baud"])
    elif name == "reset_chip":
        cmds.reset_chip(esp, kwargs["reset_mode"])
    elif name == "write_flash":
        cmds.write_flash(esp, kwargs["addr_data"])
    elif name == "attach_flash":
        cmds.attach_flash(esp)
    elif name == "erase_flash":
        cmds.erase_flash(esp)
    return esp


def write_firmware(plan: FirmwarePlan, say=print) -> str:
    """Erase and write MicroPython on the board at plan.port; returns the chip name."""
    from esptool import cmds
    from esptool.util import FatalError

    try:
        esp = cmds.connect_esp(port=plan.port, chip=plan.chip)
    except (FatalError, OSError) as error:
        raise FirmwareWriteFailed(
            f"esptool could not talk to the bootloader on {plan.port} ({error}): hold BOOT, "
            "press EN, release BOOT, and run the command again"
        ) from None
    try:
        chip = esp.CHIP_NAME
        say(f"chip: {chip}")
        for name, kwargs in write_calls(plan, chip):
            say(f"esptool: {name.replace('_', ' ')}")
            esp = _run_call(cmds, esp, name, kwargs)
        return chip
    except FatalError as error:
        raise FirmwareWriteFailed(f"esptool failed: {error}; run the command again") from None
    finally:
        port = getattr(esp, "_port", None)
        if port is not None:
            port.close()
