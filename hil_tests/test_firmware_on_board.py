"""Writing MicroPython with esptool: only on a real board (the rig has no bootloader).

Its argument building is unit-tested in tests/provisioning/test_firmware_plan.py.
Give the image with FIELDLINE_HIL_FIRMWARE=/path/to/ESP32_GENERIC-....bin.
"""

from __future__ import annotations

import os

import pytest

from fieldline_provision.firmware import firmware_plan, write_firmware
from fieldline_provision.serial_board_link import SerialBoardLink


def test_firmware_is_written_and_micropython_answers(board):
    if board.is_rig:
        pytest.skip(
            "esptool needs a real ESP32 bootloader; the rig is the MicroPython unix port "
            "(set FIELDLINE_HIL_PORT and FIELDLINE_HIL_FIRMWARE to run this)"
        )
    image = os.environ.get("FIELDLINE_HIL_FIRMWARE")
    if not image:
        pytest.fail(
            "set FIELDLINE_HIL_FIRMWARE to a MicroPython .bin for this board", pytrace=False
        )
    chip = write_firmware(firmware_plan(board.port, image))
    assert chip.startswith("ESP32")
    link = SerialBoardLink.open(board.port, answer_timeout=20)
    try:
        assert link.eval("__import__('sys').implementation.name") == "micropython"
    finally:
        link.close()
