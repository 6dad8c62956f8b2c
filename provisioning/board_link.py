"""The link to a board: run code, move files, hash files, reset, read its console.

`BoardLink` is the interface the rest of `provision` uses; `SerialBoardLink` is its one
implementation, over mpremote's serial transport (raw REPL). A board on /dev/ttyUSB0 and
the test rig on /dev/pts/N go through exactly this code; only the port path differs.

Paths on the board are relative to its working directory ("/" on a board after boot), so
`lib/fieldline/__init__.py` and `main.py` name the same files MicroPython imports.
"""

from __future__ import annotations

import ast
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from fieldline_provision.errors import (
    BoardCommandFailed,
    BoardDisconnected,
    BoardFlashFull,
    BoardInBootloader,
    BoardNotAnswering,
    NotMicroPython,
    ProvisionError,
)
from fieldline_provision.port_access import diagnose_open_failure

Progress = Callable[[int, int], None]

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
# Bytes of raw data per exec when writing a file: small enough for an ESP32's heap
# (the chunk is compiled as a bytes literal), large enough to keep round trips few.
WRITE_CHUNK = 1024


class BoardLink(Protocol):
    port: str

    def exec(self, code: str) -> bytes: ...
    def eval(self, expression: str) -> Any: ...
    def put_file(self, path: str, data: bytes, progress: Progress | None = None) -> None:
        """Write to path.tmp, then rename over path: the file is the old or the new one,
        never cut; a failed write removes its .tmp (if the board still answers)."""
        try:
            self._write_then_rename(path, data, progress)
        except ProvisionError as error:
            with contextlib.suppress(ProvisionError):
                self.remove_file(path + ".tmp")
            if isinstance(error, BoardFlashFull):
                raise BoardFlashFull(path) from None
            raise

    def _write_then_rename(self, path: str, data: bytes, progress: Progress | None) -> None:
        folders = parent_folders(path)
        if folders:
            self.exec(_MAKEDIRS_CODE.format(folders=folders))
        tmp = path + ".tmp"
        self.exec(f"_fl_f = open({tmp!r}, 'wb')")
        try:
            sent = 0
            total = len(data)
            for start in range(0, total, WRITE_CHUNK):
                chunk = data[start : start + WRITE_CHUNK]
                self.exec(f"_fl_f.write({chunk!r})")
                sent += len(chunk)
                if progress:
                    progress(sent, total)
            if progress and total == 0:
                progress(0, 0)
        finally:
            self.exec("_fl_f.close()\ndel _fl_f")
        self.exec(_RENAME_CODE.format(tmp=tmp, path=path))

    def read_file(self, path: str) -> bytes | None: ...
    def file_hashes(self, paths: list[str]) -> dict[str, str | None]: ...
    def list_files(self, folder: str = "") -> list[str]: ...
    def reset(self) -> None:
        """Soft reset, the way every MicroPython port has one: stop what runs (Ctrl-C via
        the raw REPL entry), go to the normal REPL (Ctrl-B) and press Ctrl-D there; the
        board runs boot.py, then main.py."""
        self._ensure_raw_repl()
        try:
            self.transport.exit_raw_repl()
            self.transport.read_until(1, b">>> ", timeout=2, timeout_overall=3)
            self.transport.serial.write(b"\x04")
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None

    def read_console(self, seconds: float) -> bytes: ...
    def close(self) -> None: ...


# Runs on the board: sha256 (hex) of each path, None where the file is missing.
_HASHES_CODE = """\
import hashlib, binascii
def _fl_hash(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
print(repr(dict((p, _fl_hash(p)) for p in {paths!r})))
del _fl_hash
"""

# Runs on the board: every file under a folder, recursively, as relative paths.
_LIST_CODE = """\
import os
def _fl_walk(d, out):
    for e in os.ilistdir(d or '.'):
        p = d + '/' + e[0] if d else e[0]
        if e[1] & 0x4000:
            _fl_walk(p, out)
        else:
            out.append(p)
    return out
print(repr(_fl_walk({folder!r}, [])))
del _fl_walk
"""

_MAKEDIRS_CODE = """\
import os
for d in {folders!r}:
    try:
        os.mkdir(d)
    except OSError as e:
        if e.args[0] != 17:
            raise
"""

# Replace the file in one step, so a file is either the old or the new version.
_RENAME_CODE = """\
import os
try:
    os.rename({tmp!r}, {path!r})
except OSError:
    os.remove({path!r})
    os.rename({tmp!r}, {path!r})
"""


def parent_folders(path: str) -> list[str]:
    """'lib/fieldline/x.py' -> ['lib', 'lib/fieldline']."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def last_error_line(error_output: str) -> str:
    lines = [line for line in error_output.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


class SerialBoardLink:
    """A board reached over a serial port (or anything that behaves like one)."""

    def __init__(self, transport: SerialTransport, port: str) -> None:
        self.transport = transport
        self.port = port

    # ---- opening ---------------------------------------------------------------------

    @classmethod
    def attach(cls, port: str) -> SerialBoardLink:
        """Open the port without disturbing the board (for reading its console)."""
        try:
            # A read timeout bounds every wait: on a pty mpremote reads without polling.
            transport = SerialTransport(port, baudrate=115200, timeout=2)
        except TransportError:
            raise diagnose_open_failure(port) from None
        return cls(transport, port)

    @classmethod
    def open(cls, port: str, answer_timeout: float = 8.0) -> SerialBoardLink:
        """Open the port and get the board's raw REPL, or raise the error that says why not."""
        link = cls.attach(port)
        try:
            link.enter_raw_repl(answer_timeout)
        except BaseException:
            link.close()
            raise
        return link

    def enter_raw_repl(self, timeout: float = 8.0) -> None:
        """Interrupt whatever runs and enter the raw REPL (mpremote's `resume` entry: no
        soft reset, so boot.py and main.py do not run in between). Retried within timeout,
        because a board busy booting or printing a traceback can miss the first Ctrl-A."""
        serial_port = self.transport.serial
        seen = b""
        deadline = time.monotonic() + timeout
        attempt_timeout = 1.5
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

    def _ensure_raw_repl(self) -> None:
        if not self.transport.in_raw_repl:
            self.enter_raw_repl()

    def close(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.close()
        except (OSError, serial.SerialException):
            pass

    # ---- code ------------------------------------------------------------------------

    def exec(self, code: str) -> bytes:
        self._ensure_raw_repl()
        try:
            return self.transport.exec(code)
        except TransportExecError as error:
            line = last_error_line(error.error_output)
            if "ENOSPC" in line or "[Errno 28]" in line:
                raise BoardFlashFull("a file") from None
            raise BoardCommandFailed(f"the board raised {line}") from None
        except TransportError as error:
            raise BoardNotAnswering(self.port, f"it stopped answering: {error}") from None
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None

    def eval(self, expression: str) -> Any:
        return ast.literal_eval(self.exec(f"print(repr({expression}))").decode().strip())

    # ---- files -----------------------------------------------------------------------

    def put_file(self, path: str, data: bytes, progress: Progress | None = None) -> None:
        folders = parent_folders(path)
        if folders:
            self.exec(_MAKEDIRS_CODE.format(folders=folders))
        tmp = path + ".tmp"
        self.exec(f"_fl_f = open({tmp!r}, 'wb')")
        try:
            sent = 0
            total = len(data)
            for start in range(0, total, WRITE_CHUNK):
                chunk = data[start : start + WRITE_CHUNK]
                self.exec(f"_fl_f.write({chunk!r})")
                sent += len(chunk)
                if progress:
                    progress(sent, total)
            if progress and total == 0:
                progress(0, 0)
        finally:
            self.exec("_fl_f.close()\ndel _fl_f")
        try:
            self.exec(_RENAME_CODE.format(tmp=tmp, path=path))
        except BoardFlashFull:
            raise BoardFlashFull(path) from None

    def read_file(self, path: str) -> bytes | None:
        code = (
            f"try:\n _fl_f = open({path!r}, 'rb')\nexcept OSError:\n print('None')\n"
            "else:\n print(repr(_fl_f.read()))\n _fl_f.close()\n del _fl_f"
        )
        return ast.literal_eval(self.exec(code).decode().strip())

    def file_hashes(self, paths: list[str]) -> dict[str, str | None]:
        if not paths:
            return {}
        return ast.literal_eval(self.exec(_HASHES_CODE.format(paths=list(paths))).decode())

    def list_files(self, folder: str = "") -> list[str]:
        return ast.literal_eval(self.exec(_LIST_CODE.format(folder=folder)).decode())

    def remove_file(self, path: str) -> None:
        self.exec(f"import os\ntry:\n os.remove({path!r})\nexcept OSError:\n pass")

    # ---- reset and console -----------------------------------------------------------

    def reset(self) -> None:
        """Soft reset, the way every MicroPython port has: leave the raw REPL (Ctrl-B) and
        press Ctrl-D at the normal REPL; the board runs boot.py, then main.py."""
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.read_until(1, b">>> ", timeout=2, timeout_overall=3)
            self.transport.serial.write(b"\x04")
        except (serial.SerialException, OSError):
            raise BoardDisconnected(self.port) from None

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
