"""Which serial ports are likely ESP32 boards, and picking one for `flash`."""

from __future__ import annotations

import pytest

from fieldline_provision.errors import UsageError
from fieldline_provision.ports import SerialPort, bridge_name, choose_board_port


@pytest.mark.parametrize(
    ("vid", "pid", "bridge"),
    [
        (0x10C4, 0xEA60, "CP210x"),
        (0x1A86, 0x7523, "CH340"),
        (0x0403, 0x6001, "FTDI FT232R"),
        (0x0403, 0x6015, "FTDI FT231X"),
        (0x303A, 0x1001, "Espressif native USB"),
        (0x303A, 0x4001, "Espressif native USB"),
        (0x0403, 0x6010, None),  # FTDI dual (JTAG adapters), not a board bridge
        (0x2341, 0x0043, None),  # an Arduino Uno
        (None, None, None),  # /dev/ttyS0
    ],
)
def test_usb_ids_mark_likely_boards(vid, pid, bridge):
    assert bridge_name(vid, pid) == bridge


def port(device, vid=None, pid=None):
    return SerialPort(device, "", vid, pid, bridge_name(vid, pid))


def test_the_one_board_is_chosen():
    ports = [port("/dev/ttyS0"), port("/dev/ttyUSB0", 0x10C4, 0xEA60)]
    assert choose_board_port(ports) == "/dev/ttyUSB0"
    assert ports[1].usb_id == "10c4:ea60" and ports[0].usb_id == "-"


def test_several_boards_are_listed_and_nothing_is_chosen():
    ports = [port("/dev/ttyUSB0", 0x10C4, 0xEA60), port("/dev/ttyACM0", 0x303A, 0x1001)]
    with pytest.raises(UsageError, match="several boards") as caught:
        choose_board_port(ports)
    assert "/dev/ttyUSB0 (CP210x)" in str(caught.value)
    assert "/dev/ttyACM0 (Espressif native USB)" in str(caught.value)


def test_no_board_says_to_plug_one_in():
    with pytest.raises(UsageError, match="no ESP32 board found"):
        choose_board_port([port("/dev/ttyS0")])
