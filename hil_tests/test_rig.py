"""The rig itself behaves like a board where provision can tell (always the rig: these are
properties of the stand-in, not of a real board)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fieldline_provision.serial_board_link import SerialBoardLink
from hil_tests.rig import Rig

COUNTING_MAIN = b"""\
import os
try:
    n = int(open('boots.txt').read())
except OSError:
    n = 0
open('boots.txt', 'w').write(str(n + 1))
print('booted', n + 1, os.getcwd())
"""


def test_en_button_reboots_into_main_with_the_flash_folder_as_cwd(tmp_path):
    rig = Rig(tmp_path / "flash").start()
    try:
        link = SerialBoardLink.open(rig.port)
        try:
            link.put_file("main.py", COUNTING_MAIN)
        finally:
            link.close()
        rig.press_reset()
        assert rig.wait_for_console("booted 1", 30), rig.console()[-500:]
        assert str(rig.flash_dir) in rig.console()
        # main.py ended: MicroPython stays in its REPL (-i), as a board does; the port
        # stayed open through the reset and the board answers again.
        link = SerialBoardLink.open(rig.port)
        try:
            assert link.read_file("boots.txt") == b"1"
            assert link.eval("__import__('os').getcwd()") == str(rig.flash_dir)
        finally:
            link.close()
        assert rig.boots == 2
    finally:
        rig.stop()


def test_a_raw_repl_soft_reset_frees_the_heap_without_running_main_as_on_a_board(tmp_path):
    """Ctrl-D in the raw REPL: 'soft reboot', globals gone, main.py not run, still in the
    raw REPL; so plain `mpremote connect <rig> fs ls` (which enters that way) works."""
    rig = Rig(tmp_path / "flash").start()
    try:
        link = SerialBoardLink.open(rig.port)
        try:
            link.put_file("main.py", COUNTING_MAIN)
            link.exec("hog = bytearray(50000)")
            link.fresh_raw_repl()
            assert link.eval("'hog' in globals()") is False
            assert link.read_file("boots.txt") is None, "main.py ran"
        finally:
            link.close()
        assert rig.soft_resets == 1
        listed = subprocess.run(
            [str(Path(sys.executable).with_name("mpremote")), "connect", rig.port, "fs", "ls"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert "main.py" in listed.stdout
    finally:
        rig.stop()
