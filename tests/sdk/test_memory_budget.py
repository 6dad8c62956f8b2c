"""Issue 14's memory goal, as a test so that a regression fails CI: on the ESP32-sized
interpreter (32-bit, an ESP32's object sizes), the SDK as provision uploads it (.mpy for
the interpreter's own bytecode version) goes online and drains a 1,000-reading backlog
within BUDGET of heap, and at every larger heap too (a drain once stalled at 70K while
it passed at 62K: a PUBLISH buffer's MemoryError killed the link for ever). From source
it drains at a board's full heap. The issue's goal is 48K; measured today 50-52K (the
edge moves with the collector's timing; docs/sdk.md), so the budget is what holds today
with a 2 KB margin; the goal is an expected failure (not strict: the edge is timing)."""

from __future__ import annotations

import subprocess

import pytest

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bytecode import compile_for
from tests.sdk.board import ESP32_HEAP, ESP32_MICROPYTHON
from tests.sdk.memory import DRAIN, board_with, run

BUDGET = 54 * 1024  # 58K before: RAM queue 50 -> 8, batches bounded by their JSON
GOAL = 48 * 1024


@pytest.fixture(autouse=True)
def esp32_interpreter():
    assert ESP32_MICROPYTHON.exists(), f"{ESP32_MICROPYTHON} is missing (../shared/tools)"


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


@pytest.mark.parametrize("heap", [BUDGET, 62 * 1024, 70 * 1024, int(ESP32_HEAP)])
def test_online_and_a_1000_reading_drain_fit_the_budget(anonymous_mosquitto, mpy_board, heap):
    numbers = run(ESP32_MICROPYTHON, mpy_board, DRAIN, anonymous_mosquitto.port, heap)
    assert numbers is not None, f"the drain did not complete in a {heap}-byte heap"
    imported, online, _peak = numbers
    assert imported < 34 * 1024, f"import fieldline keeps {imported} bytes"
    assert online < 42 * 1024, f"a connected, idle Device keeps {online} bytes"


def test_from_source_at_a_boards_heap(anonymous_mosquitto, tmp_path):
    board = board_with(firmware_files(), tmp_path / "board")
    assert run(ESP32_MICROPYTHON, board, DRAIN, anonymous_mosquitto.port, int(ESP32_HEAP))


@pytest.mark.xfail(reason="issue 14's goal (48K) is not met yet: 50-52K measured", strict=False)
def test_the_goal_half_a_boards_heap(anonymous_mosquitto, mpy_board):
    assert run(ESP32_MICROPYTHON, mpy_board, DRAIN, anonymous_mosquitto.port, GOAL)
