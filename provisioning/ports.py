"""Serial ports, which of them are likely ESP32 boards, and whether MicroPython answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from serial.tools import list_ports

from fieldline_provision.errors import ProvisionError, UsageError

# USB bridges found on ESP32 boards, by (VID, PID); PID None = any product of that vendor.
LIKELY_BOARD_BRIDGES: dict[tuple[int, int | None], str] = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x55D4): "CH9102",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x303A, None): "Espressif native USB",
}


@dataclass
class SerialPort:
    device: str
    description: str
    vid: int | None
    pid: int | None
    bridge: str | None  # the likely-board bridge, None when not one
    micropython: bool | None = None  # None: not probed

    @property
    def likely_board(self) -> bool:
        return self.bridge is not None

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None else "-"


def bridge_name(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return LIKELY_BOARD_BRIDGES.get((vid, pid)) or LIKELY_BOARD_BRIDGES.get((vid, None))


def serial_ports(extra: list[str] = ()) -> list[SerialPort]:
    """The machine's serial ports (likely boards first) plus any named in `extra` (ptys
    and other ports pyserial does not enumerate)."""
    found = [
        SerialPort(p.device, p.description or "", p.vid, p.pid, bridge_name(p.vid, p.pid))
        for p in list_ports.comports()
    ]
    known = {p.device for p in found}
    found += [
        SerialPort(d, "given on the command line", None, None, None)
        for d in extra
        if d not in known
    ]
    return sorted(found, key=lambda p: (not p.likely_board, p.device))


def probe_micropython(port: str, open_link: Callable) -> bool:
    """True when MicroPython's raw REPL answers on `port`. Interrupts the running app and
    soft-resets the board afterwards so the app runs again."""
    try:
        link = open_link(port, answer_timeout=3.0)
    except ProvisionError:
        return False
    try:
        answered = link.eval("1+1") == 2
        link.reset()
    except ProvisionError:
        answered = False
    finally:
        link.close()
    return answered


def choose_board_port(ports: list[SerialPort]) -> str:
    """The one likely board, or an error listing the candidates."""
    boards = [p for p in ports if p.likely_board]
    if len(boards) == 1:
        return boards[0].device
    if not boards:
        raise UsageError(
            "no ESP32 board found on USB: plug it in (with a data cable) or give --port; "
            "`provision ports` lists the serial ports"
        )
    listing = ", ".join(f"{p.device} ({p.bridge})" for p in boards)
    raise UsageError(f"several boards are plugged in ({listing}): pick one with --port")
