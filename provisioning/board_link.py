"""The link to a board: run code, move files, hash files, reset, read its console.

`BoardLink` is built the way mpremote's `Transport` is: a subclass supplies the few things
only the wire can do (run code: `exec_raw`; stop whatever runs and get the raw REPL:
`enter_raw_repl`; leave it and soft-reset: `soft_reset`; `read_console`; `close`), and
every file operation is written once here as MicroPython code run through `exec`. So a
safety rule of a file operation (write to .tmp, rename, remove the .tmp on failure) or of
`reset` (interrupt first) holds for every link, the serial one and a test's alike.
`SerialBoardLink` (serial_board_link.py) is the link over a serial port.

Paths on the board are relative to its working directory ("/" on a board after boot), so
`lib/fieldline/__init__.py` and `main.py` name the same files MicroPython imports.
"""

from __future__ import annotations

import abc
import ast
import contextlib
from collections.abc import Callable
from typing import Any

from fieldline_provision.errors import BoardCommandFailed, BoardFlashFull, ProvisionError

Progress = Callable[[int, int], None]

# Bytes of raw data per exec when writing a file: small enough for an ESP32's heap
# (the chunk is compiled as a bytes literal), large enough to keep round trips few.
WRITE_CHUNK = 1024


class BoardLink(abc.ABC):
    port: str

    # ---- what a subclass supplies: only the wire can do these ------------------------

    @abc.abstractmethod
    def exec_raw(self, code: str) -> tuple[bytes, bytes]:
        """Run code on the board: (what it printed, its traceback or b""), as mpremote's
        exec_raw. A ProvisionError when the board cannot be reached or stops answering.
        Interrupted half-way (Ctrl-C on the host), the next call must still work."""

    @abc.abstractmethod
    def enter_raw_repl(self, timeout: float | None = None) -> None:
        """Stop whatever runs on the board (Ctrl-C) and get its raw REPL, without a soft
        reset; then exec works."""

    @abc.abstractmethod
    def soft_reset(self) -> None:
        """From the raw REPL: leave it (Ctrl-B) and press Ctrl-D at the normal REPL; the
        board runs boot.py, then main.py."""

    @abc.abstractmethod
    def fresh_raw_repl(self) -> None:
        """Soft reset from inside the raw REPL (Ctrl-D on an empty line): the heap is freed,
        main.py does not run, and the board is back in the raw REPL. Before an upload: an
        app interrupted with Ctrl-C leaves its objects on the heap."""

    @abc.abstractmethod
    def read_console(self, seconds: float) -> bytes:
        """Whatever the board prints within `seconds`."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # ---- code ------------------------------------------------------------------------

    def exec(self, code: str) -> bytes:
        output, error_output = self.exec_raw(code)
        if error_output:
            raise board_error(error_output.decode("utf-8", "replace"))
        return output

    def eval(self, expression: str) -> Any:
        return ast.literal_eval(self.exec(f"print(repr({expression}))").decode().strip())

    # ---- files -----------------------------------------------------------------------

    def put_file(self, path: str, data: bytes, progress: Progress | None = None) -> None:
        """Write to path.tmp, then rename over path: the file is the old or the new one,
        never cut. Whatever stops the write (the board raising, its flash full, Ctrl-C on
        the host) removes the .tmp first, if the board still answers."""
        tmp = path + ".tmp"
        try:
            self.make_folders(parent_folders(path))
            self._write(tmp, data, progress)
            self.exec(_RENAME_CODE.format(tmp=tmp, path=path))
        except BaseException as error:
            with contextlib.suppress(ProvisionError):
                self.exec(_DISCARD_CODE.format(tmp=tmp))
            if isinstance(error, BoardFlashFull):
                raise BoardFlashFull(path) from None
            raise

    def _write(self, tmp: str, data: bytes, progress: Progress | None) -> None:
        self.exec(f"_fl_f = open({tmp!r}, 'wb')")
        total = len(data)
        for start in range(0, total, WRITE_CHUNK):
            chunk = data[start : start + WRITE_CHUNK]
            self.exec(f"_fl_f.write({chunk!r})")
            if progress:
                progress(start + len(chunk), total)
        if progress and total == 0:
            progress(0, 0)
        self.exec("_fl_f.close()\ndel _fl_f")

    def read_file(self, path: str) -> bytes | None:
        return ast.literal_eval(self.exec(_READ_CODE.format(path=path)).decode().strip())

    def file_hashes(self, paths: list[str]) -> dict[str, str | None]:
        if not paths:
            return {}
        return ast.literal_eval(self.exec(_HASHES_CODE.format(paths=list(paths))).decode())

    def list_files(self, folder: str = "") -> list[str]:
        return ast.literal_eval(self.exec(_LIST_CODE.format(folder=folder)).decode())

    def remove_file(self, path: str) -> None:
        self.remove_files([path])

    def remove_files(self, paths: list[str]) -> None:
        """Each of the files that exists; one round trip."""
        if paths:
            self.exec(_REMOVE_CODE.format(paths=list(paths)))

    def make_folders(self, folders: list[str]) -> None:
        """Each folder, parents first; those that exist are fine."""
        if folders:
            self.exec(_MAKEDIRS_CODE.format(folders=folders))

    # ---- reset -----------------------------------------------------------------------

    def reset(self) -> None:
        """Soft reset, the way every MicroPython port has one. Always interrupts first:
        Ctrl-D reaches only a board sitting in its REPL, not a running app."""
        self.enter_raw_repl()
        self.soft_reset()


def board_error(error_output: str) -> ProvisionError:
    """The error for a traceback the board printed: its last line, or the flash is full."""
    line = last_error_line(error_output)
    if "ENOSPC" in line or "[Errno 28]" in line:
        return BoardFlashFull("a file")
    return BoardCommandFailed(f"the board raised {line}")


def parent_folders(path: str) -> list[str]:
    """'lib/fieldline/x.py' -> ['lib', 'lib/fieldline']."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def last_error_line(error_output: str) -> str:
    lines = [line for line in error_output.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


# ---- the code run on the board -------------------------------------------------------

_READ_CODE = """\
try:
    _fl_f = open({path!r}, 'rb')
except OSError:
    print('None')
else:
    print(repr(_fl_f.read()))
    _fl_f.close()
    del _fl_f
"""

# sha256 (hex) of each path, None where the file is missing.
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

# Every file under a folder, recursively, as relative paths.
_REMOVE_CODE = """\
import os
for _fl_p in {paths!r}:
    try:
        os.remove(_fl_p)
    except OSError:
        pass
"""

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

# After a failed write: close the half-written file if it is still open (a FAT flash does
# not remove an open file), then remove it.
_DISCARD_CODE = """\
import os
try:
    _fl_f.close()
    del _fl_f
except NameError:
    pass
try:
    os.remove({tmp!r})
except OSError:
    pass
"""
