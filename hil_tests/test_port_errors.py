"""What `provision` says when the port or the thing behind it is wrong: one line, an exit code."""

from __future__ import annotations

import subprocess
import sys
import time

from fieldline_provision.cli import main


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_no_such_port(capsys):
    code, err = run(capsys, "verify", "--port", "/dev/ttyFIELDLINE-missing")
    assert code == 3
    assert "no serial port /dev/ttyFIELDLINE-missing" in err
    assert err.count("\n") == 1


def test_port_busy_names_the_process_holding_it(board, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import serial, sys, time\n"
            "s = serial.Serial(sys.argv[1], exclusive=True)\n"
            "print('open', flush=True)\n"
            "time.sleep(60)\n",
            board.port,
        ],
        stdout=subprocess.PIPE,
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
