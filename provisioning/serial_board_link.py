"""`SerialBoardLink`: a board reached over a serial port, through mpremote's serial
transport (raw REPL, raw-paste). A board on /dev/ttyUSB0 and the test rig on /dev/pts/N go
through exactly this code; only the port path differs.

It supplies only what needs the wire (see board_link.py): running code, entering the raw
REPL (which interrupts the running app), the soft reset, reading the console, closing.
"""

from __future__ import annotations

import time

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import (
    BoardDisconnected,
    BoardInBootloader,
    BoardNotAnswering,
    NotMicroPython,
)
from fieldline_provision.port_access import diagnose_open_failure, refuse_shared_port

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"soft reboot\r\n"
DEFAULT_ANSWER_TIMEOUT = 8.0


class SerialBoardLink(BoardLink):
    """A board reached over a serial port (or anything that behaves like one)."""

    def __init__(
        self, transport: SerialTransport, port: str, answer_timeout: float = DEFAULT_ANSWER_TIMEOUT
    ) -> None:
        self.transport = transport
        self.port = port
        # How long entering the raw REPL may take, also when it is entered again after an
        # exchange was cut (Ctrl-C on the host) or to reset.
        self.answer_timeout = answer_timeout

    # ---- opening ---------------------------------------------------------------------

    @classmethod
    def attach(cls, port: str, answer_timeout: float = DEFAULT_ANSWER_TIMEOUT) -> SerialBoardLink:
        """Open the port without disturbing the board (for reading its console)."""
        try:
            # A read timeout bounds every wait: on a pty mpremote reads without polling.
            transport = SerialTransport(port, baudrate=115200, timeout=2)
        except TransportError:
            raise diagnose_open_failure(port) from None
        try:
            refuse_shared_port(port)  # the lock keeps out only those who also lock
        except BaseException:
            transport.close()
            raise
        return cls(transport, port, answer_timeout)

    @classmethod
    def open(cls, port: str, answer_timeout: float = DEFAULT_ANSWER_TIMEOUT) -> SerialBoardLink:
        """Open the port and get the board's raw REPL, or raise the error that says why not."""
        link = cls.attach(port, answer_timeout)
        try:
            link.enter_raw_repl()
        except BaseException:
            link.close()
            raise
        return link

    def enter_raw_repl(self, timeout: float | None = None) -> None:
        """Interrupt whatever runs and enter the raw REPL (mpremote's `resume` entry: no
        soft reset, so boot.py and main.py do not run in between). Retried within timeout,
        because a board busy booting or printing a traceback can miss the first Ctrl-A."""
        serial_port = self.transport.serial
        seen = b""
        deadline = time.monotonic() + (self.answer_timeout if timeout is None else timeout)
        attempt_timeout = 1.5
        self.transport.in_raw_repl = False
        try:
            while True:
                serial_port.write(b"\r\x03\x03")  # Ctrl-C twice: stop the running program
                time.sleep(0.05)
                seen += self._drain()
                serial_port.write(b"\r\x01")  # Ctrl-A: raw REPL
                data = self._read_until(RAW_REPL_BANNER, attempt_timeout)
                seen += data
                if data.endswith(RAW_REPL_BANNER):
                    # The prompt '>' follows the banner; exec waits for it.
                    self.transport.in_raw_repl = True
                    return
                if time.monotonic() > deadline:
                    break
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None
        raise self._classify_silence(seen)

    def _classify_silence(self, seen: bytes) -> Exception:
        text = seen.replace(b"\r\x03\x03", b"").replace(b"\r\x01", b"")
        printable = text.decode("utf-8", "replace").strip()
        if b"waiting for download" in text or b"DOWNLOAD" in text:
            return BoardInBootloader(self.port)
        if not printable:
            return BoardNotAnswering(self.port)
        if b"MicroPython" in text or b">>>" in text:
            return BoardNotAnswering(self.port, "its REPL did not switch to raw mode")
        lines = [line.strip() for line in printable.splitlines() if line.strip()]
        return NotMicroPython(self.port, lines[-1][-60:])

    def _read_until(self, ending: bytes, seconds: float) -> bytes:
        """Bytes up to and including `ending`, or all that came within `seconds`. Unlike
        mpremote's read_until it also gives up on a board that never stops printing, and
        reads byte by byte so that nothing after `ending` (the raw REPL's '>') is taken."""
        serial_port = self.transport.serial
        data = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if serial_port.in_waiting:
                data += serial_port.read(1)
                if data.endswith(ending):
                    break
            else:
                time.sleep(0.005)
        return data

    def _drain(self) -> bytes:
        serial_port = self.transport.serial
        got = b""
        # Bounded: a board that never stops printing must not keep us here.
        for _ in range(64):
            waiting = serial_port.in_waiting
            if not waiting:
                break
            got += serial_port.read(waiting)
        return got

    def close(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.close()
        except (OSError, serial.SerialException):
            pass

    # ---- code ------------------------------------------------------------------------

    def exec_raw(self, code: str) -> tuple[bytes, bytes]:
        if not self.transport.in_raw_repl:
            self.enter_raw_repl()
        try:
            return self.transport.exec_raw(code)
        except TransportError as error:
            self.transport.in_raw_repl = False
            raise BoardNotAnswering(self.port, f"it stopped answering: {error}") from None
        except (serial.SerialException, OSError):
            self.transport.in_raw_repl = False
            raise BoardDisconnected(self.port) from None
        except BaseException:
            # Cut half-way (Ctrl-C on the host): the board may still be running the code
            # or owe its answer. Entering the raw REPL again interrupts it and reads past
            # whatever it still prints, so the next exec starts in step.
            self.transport.in_raw_repl = False
            raise

    # ---- reset and console -----------------------------------------------------------

    def soft_reset(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.read_until(1, b">>> ", timeout=2, timeout_overall=3)
            self.transport.serial.write(b"\x04")
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None

    def fresh_raw_repl(self) -> None:
        if not self.transport.in_raw_repl:
            self.enter_raw_repl()
        self.transport.in_raw_repl = False
        try:
            self.transport.serial.write(b"\x04")
            said = self._read_until(SOFT_REBOOT, self.answer_timeout)
            if said.endswith(SOFT_REBOOT):
                said = self._read_until(RAW_REPL_BANNER, self.answer_timeout)
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None
        if said.endswith(RAW_REPL_BANNER):
            self.transport.in_raw_repl = True  # the prompt '>' follows; exec waits for it
        else:  # a port without this reset: interrupt whatever the board started instead
            self.enter_raw_repl()

    def read_console(self, seconds: float) -> bytes:
        """Whatever the board prints within `seconds` (returns early on a quiet board only
        when seconds have passed)."""
        serial_port = self.transport.serial
        got = b""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                waiting = serial_port.in_waiting
                if waiting:
                    got += serial_port.read(waiting)
                else:
                    time.sleep(0.02)
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None
        return got
