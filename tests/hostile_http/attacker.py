"""A bounded slowloris on loopback: opens sockets at a fixed rate, sends half a request
head on each and trickles a header line every `trickle` seconds; counts what the
server closed. `attack()` runs it in a process of its own, so the probes' timings do
not include the attacker's share of this process.

    python -m tests.hostile_http.attacker PORT TOTAL PER_SECOND SECONDS
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: attacker\r\n"


class Slowloris:
    def __init__(self, port: int, total: int, per_second: float, trickle: float = 0.5) -> None:
        self.port, self.total, self.per_second, self.trickle = port, total, per_second, trickle
        self.sockets: list[socket.socket] = []
        self.opened = 0
        self.closed_by_server = 0
        self.connect_errors = 0
        self.answers: dict[bytes, int] = {}  # first line of what the server wrote -> count
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def __enter__(self) -> Slowloris:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(30)
        for sock in self.sockets:
            sock.close()

    def _open(self) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        except OSError:
            self.connect_errors += 1
            sock.close()
            return
        self.sockets.append(sock)
        self.opened += 1

    def _still_open(self, sock: socket.socket, data: bytes) -> bool:
        try:
            answer = sock.recv(4096)
        except BlockingIOError:
            answer = None
        except OSError:
            answer = b""
        if answer is not None:  # the server wrote (a 503, a 400) or closed it
            if answer:
                first = answer.split(b"\r\n", 1)[0]
                self.answers[first] = self.answers.get(first, 0) + 1
            self.closed_by_server += 1
            sock.close()
            return False
        try:
            sock.send(data)
        except BlockingIOError:
            pass
        except OSError:
            self.closed_by_server += 1
            sock.close()
            return False
        return True

    def _run(self) -> None:
        started = time.monotonic()
        next_trickle = started
        first_send: dict[int, bool] = {}
        while not self.stopping.is_set():
            due = min(self.total, int((time.monotonic() - started) * self.per_second))
            while self.opened < due:
                self._open()
            now = time.monotonic()
            if now >= next_trickle:
                next_trickle = now + self.trickle
                kept = []
                for sock in self.sockets:
                    head = not first_send.get(sock.fileno(), False)
                    if self._still_open(sock, HALF_HEAD if head else b"X-a: b\r\n"):
                        first_send[sock.fileno()] = True
                        kept.append(sock)
                    else:
                        first_send.pop(sock.fileno(), None)
                self.sockets = kept
            time.sleep(0.01)

    @property
    def open_now(self) -> int:
        return len(self.sockets)


@contextmanager
def attack(port: int, total: int, per_second: float, seconds: float) -> Iterator[dict]:
    """Run a Slowloris for `seconds` in a child process; the dict gets its counts at exit."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile_http.attacker"]
        + [str(port), str(total), str(per_second), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    summary: dict = {}
    try:
        yield summary
    finally:
        out, _ = child.communicate(timeout=seconds + 30)
        summary.update(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str]) -> None:
    port, total, per_second, seconds = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    with Slowloris(port, total, per_second) as loris:
        time.sleep(seconds)
        summary = {
            "opened": loris.opened,
            "closed_by_server": loris.closed_by_server,
            "connect_errors": loris.connect_errors,
            "open_at_end": loris.open_now,
        }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
