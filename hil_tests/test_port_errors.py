"""What `provision` says when the port or the thing behind it is wrong: one line, an exit code."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldline_provision.board_files import BoardFile, upload_changed
from fieldline_provision.cli import main
from fieldline_provision.errors import BoardDisconnected, PartialUpload
from fieldline_provision.serial_board_link import SerialBoardLink
from hil_tests.rig import Rig


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_no_such_port(capsys):
    code, err = run(capsys, "verify", "--port", "/dev/ttyFIELDLINE-missing")
    assert code == 3
    assert "no serial port /dev/ttyFIELDLINE-missing" in err
    assert err.count("\n") == 1


HOLD_EXCLUSIVELY = (
    "import serial, sys, time\n"
    "s = serial.Serial(sys.argv[1], exclusive=True)\n"
    "print('open', flush=True)\n"
    "time.sleep(60)\n"
)


def test_port_busy_names_the_process_holding_it(board, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_EXCLUSIVELY, board.port], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"open"
        code, err = run(capsys, "verify", "--port", board.port)
    finally:
        holder.kill()
        holder.wait()
    assert code == 3
    assert f"serial port {board.port} is busy" in err
    assert f"(pid {holder.pid})" in err


def test_a_reader_that_does_not_lock_the_port_is_named(board, capsys):
    # `cat` opens the port without pyserial's lock: nothing stops a second opener, and
    # the two would share the board's answers at random. provision names it instead.
    reader = subprocess.Popen(["cat", board.port], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # cat has the port open
        code, err = run(capsys, "verify", "--port", board.port)
    finally:
        reader.kill()
        reader.wait()
    assert code == 3, err
    assert f"serial port {board.port} is busy: cat (pid {reader.pid}) has it open" in err


def test_the_busy_port_of_a_rig_in_another_process_names_the_holder_not_the_rig(tmp_path, capsys):
    # The rig in a process of its own (as `hil_tests` users run it beside a terminal)
    # holds both ends of its pty; it is the board's end, not the program in the way.
    rig = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from hil_tests.rig import Rig\n"
            "rig = Rig(sys.argv[1]).start()\n"
            "print(rig.port, flush=True)\n"
            "time.sleep(120)\n",
            str(tmp_path / "flash"),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    holder = None
    try:
        port = rig.stdout.readline().decode().strip()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_EXCLUSIVELY, port], stdout=subprocess.PIPE
        )
        assert holder.stdout.readline().strip() == b"open"
        code, err = run(capsys, "verify", "--port", port)
    finally:
        for process in (holder, rig):
            if process is not None:
                process.kill()
                process.wait()
    assert code == 3, err
    assert f"(pid {holder.pid}) has it open" in err
    assert f"(pid {rig.pid})" not in err


def test_something_else_than_micropython_behind_the_port(other_program_port, capsys):
    # A board running another firmware: it prints sensor lines and ignores the REPL keys.
    # (A shell: if an early Ctrl-C kills it, the rig restarts it and it prints the same.)
    chatty = 'trap "" INT; while :; do echo "arduino sketch: temp=21.5"; sleep 0.1; done'
    port = other_program_port("/bin/sh", "-c", chatty)
    started = time.monotonic()
    code, err = run(capsys, "verify", "--port", port)
    assert code == 5, err
    assert "not running MicroPython" in err and "--firmware" in err
    assert "arduino sketch" in err
    assert time.monotonic() - started < 30


def test_a_silent_board(other_program_port, capsys):
    port = other_program_port("sleep", "600")
    code, err = run(capsys, "verify", "--port", port)
    assert code == 4, err
    assert "does not answer" in err and "press EN" in err


def test_a_board_that_goes_away_mid_session(tmp_path):
    # Always a rig: its port can be pulled out from under the link, like a USB cable.
    rig = Rig(tmp_path / "flash").start()
    link = SerialBoardLink.open(rig.port)
    try:
        assert link.eval("1 + 1") == 2
        rig.stop()
        with pytest.raises(BoardDisconnected, match="went away"):
            link.eval("1 + 1")
    finally:
        link.close()
        rig.stop()


def test_an_upload_cut_half_way_says_what_the_board_now_has(board):
    files = [BoardFile(f"fl_hil/cut/{name}.py", b"x = 1\n" * 50) for name in "abcd"]
    link = SerialBoardLink.open(board.port)
    try:
        # The board refuses the third file: a folder sits where its temporary file goes.
        link.exec("import os\nfor d in ('fl_hil', 'fl_hil/cut', 'fl_hil/cut/c.py.tmp'):\n"
                  " try:\n  os.mkdir(d)\n except OSError:\n  pass")  # fmt: skip
        with pytest.raises(PartialUpload) as caught:
            upload_changed(link, files)
        message = str(caught.value)
        assert "the board now has 2 of 4 updated files (up to fl_hil/cut/b.py)" in message
        assert "run the same command again" in message
        hashes = link.file_hashes([f.board_path for f in files])
        assert [hashes[f.board_path] is not None for f in files] == [True, True, False, False]
        link.exec("import os\nos.rmdir('fl_hil/cut/c.py.tmp')")
        assert upload_changed(link, files).uploaded == ["fl_hil/cut/c.py", "fl_hil/cut/d.py"]
    finally:
        link.close()
