"""The rig itself behaves like a board where provision can tell (always the rig: these are
properties of the stand-in, not of a real board)."""

from __future__ import annotations

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
