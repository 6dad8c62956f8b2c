"""An exec-level fake board: a `BoardLink` whose board is a MicroPython unix-port process
over pipes, its flash a folder. It supplies only `exec_raw` for real; the other primitives
(raw REPL entry, soft reset, console) are bookkeeping that a test can read back.

Everything `BoardLink` builds on exec (put_file's .tmp and rename, read_file, hashes,
listing, reset's order) thus runs here exactly as over a serial port, as real MicroPython
code, without a pty, in milliseconds.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import BoardNotAnswering

MICROPYTHON = Path(sys.executable).with_name("micropython")

# Runs in MicroPython: read "<length>\n<code>", exec it in one namespace kept between
# calls (as the raw REPL keeps its globals), answer like the raw REPL does:
# output, \x04, traceback (empty when none), \x04.
_DRIVER = """\
import sys
i = sys.stdin.buffer
o = sys.stdout.buffer
g = {'__name__': '__main__'}
while True:
    n = i.readline()
    if not n:
        break
    code = i.read(int(n))
    try:
        exec(code, g)
        o.write(b'\\x04\\x04')
    except BaseException as e:
        o.write(b'\\x04')
        sys.print_exception(e, sys.stdout)
        o.write(b'\\x04')
"""


class MicroPythonProcessLink(BoardLink):
    def __init__(self, flash_dir: Path, answer_timeout: float = 10.0) -> None:
        self.port = f"micropython:{flash_dir}"
        self.flash_dir = Path(flash_dir)
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self.answer_timeout = answer_timeout
        self.calls: list[str] = []  # the primitives called, in order
        self.boots = 0
        self.app_running = False
        self._owed = False  # an answer not read yet (an exec cut half-way)
        # A test's Ctrl-C: when it says so for some code, the code is sent and then the
        # wait for its answer is cut by KeyboardInterrupt, as a Ctrl-C on the host does.
        self.ctrl_c_while_running = lambda code: False
        self._start()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [str(MICROPYTHON), "-c", _DRIVER],
            cwd=self.flash_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, MICROPYPATH="lib:."),
        )

    # ---- the primitives ----------------------------------------------------------------

    def exec_raw(self, code: str) -> tuple[bytes, bytes]:
        self.calls.append("exec")
        if self.app_running:
            # Like a board whose app runs: nobody reads the code.
            raise BoardNotAnswering(self.port, "an app is running (enter the raw REPL first)")
        if self._owed:
            self._read_answer()
        data = code.encode()
        self._owed = True
        self._process.stdin.write(b"%d\n" % len(data) + data)
        self._process.stdin.flush()
        if self.ctrl_c_while_running(code):
            raise KeyboardInterrupt
        return self._read_answer()

    def enter_raw_repl(self, timeout: float | None = None) -> None:
        self.calls.append("enter_raw_repl")
        self.app_running = False

    def soft_reset(self) -> None:
        self.calls.append("soft_reset")
        if self.app_running:
            return  # Ctrl-D does not reach a running app: no reset
        self._stop()
        self._owed = False
        self._start()  # the board's globals are gone, as after a soft reset
        self.boots += 1
        self.app_running = True

    def fresh_raw_repl(self) -> None:
        self.calls.append("fresh_raw_repl")
        self._stop()
        self._owed = False
        self._start()  # a fresh heap; main.py not run
        self.app_running = False

    def read_console(self, seconds: float) -> bytes:
        return b""

    def close(self) -> None:
        self._stop()

    # ---- internals -------------------------------------------------------------------

    def _read_answer(self) -> tuple[bytes, bytes]:
        """Read up to the second \\x04; (output, traceback)."""
        got = b""
        deadline = time.monotonic() + self.answer_timeout
        fd = self._process.stdout.fileno()
        while got.count(b"\x04") < 2:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise BoardNotAnswering(self.port, f"no answer in {self.answer_timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise BoardNotAnswering(self.port, f"MicroPython ended: {got[-300:]!r}")
            got += chunk
        self._owed = False
        output, error, _ = got.split(b"\x04", 2)
        return output, error

    def _stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process.stdout.close()
