"""Issue 14's memory goal, as a test so that a regression fails CI: on the ESP32-sized
interpreter (32-bit, an ESP32's object sizes), the SDK as provision uploads it (.mpy for
the interpreter's own bytecode version) goes online and drains a 1,000-reading backlog
within BUDGET of heap. The issue's goal is 48K; measured today 52K (docs/sdk.md,
bench/device_memory.py), so the budget is what holds today with a 2 KB margin, and the
test at the goal's 48K shows how far off it is without failing the run."""

from __future__ import annotations

import subprocess

import pytest

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bytecode import compile_for
from tests.sdk.board import ESP32_MICROPYTHON
from tests.sdk.memory import DRAIN, board_with, run

BUDGET = 54 * 1024  # was 58K before the RAM queue (50 -> 8) and the 1,280-byte tx buffer
GOAL = 48 * 1024

pytestmark = pytest.mark.skipif(
    not ESP32_MICROPYTHON.exists(), reason=f"{ESP32_MICROPYTHON} is missing"
)


def interpreter_bytecode() -> tuple[int, int]:
    code = "import sys; print(sys.implementation._mpy)"
    answer = subprocess.run(
        [str(ESP32_MICROPYTHON), "-c", code], capture_output=True, text=True, timeout=30
    )
    mpy = int(answer.stdout.strip())
    return mpy & 0xFF, (mpy >> 8) & 3


@pytest.fixture
def mpy_board(tmp_path):
    bytecode = compile_for(firmware_files(), interpreter_bytecode())
    assert "as .mpy" in bytecode.note, bytecode.note
    return board_with(bytecode.files, tmp_path / "board")


def test_online_and_a_1000_reading_drain_fit_the_budget(anonymous_mosquitto, mpy_board):
    numbers = run(ESP32_MICROPYTHON, mpy_board, DRAIN, anonymous_mosquitto.port, BUDGET)
    assert numbers is not None, f"the drain did not complete in a {BUDGET}-byte heap"
    imported, online, _peak = numbers
    assert imported < 34 * 1024, f"import fieldline keeps {imported} bytes"
    assert online < 42 * 1024, f"a connected, idle Device keeps {online} bytes"


@pytest.mark.xfail(reason="issue 14's goal (48K) is not met yet: 52K measured", strict=True)
def test_the_goal_half_a_boards_heap(anonymous_mosquitto, mpy_board):
    assert run(ESP32_MICROPYTHON, mpy_board, DRAIN, anonymous_mosquitto.port, GOAL)
