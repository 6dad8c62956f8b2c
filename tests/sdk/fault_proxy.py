"""A fault-injecting TCP proxy between a device and the broker (threads, no magic).

Faults, switchable while connections are live:
  stall()      existing connections stop forwarding but stay open (a dead NAT, Wi-Fi gone
               without a FIN); new connections are accepted and forwarded nowhere
  heal()       forward again; the stalled connections are closed
  drop_all()   close every connection at once (broker restart, RST)
  delay_s      sleep before forwarding each chunk (a slow, laggy link)
`accepts` records when each connection arrived, so a test can check the device's schedule.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.accepts: list[float] = []
        self.delay_s = 0.0
        self._stalled = threading.Event()
        self._blackhole = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closing = False
        threading.Thread(target=self._accept_loop, daemon=True, name="proxy-accept").start()

    # ---- faults ---------------------------------------------------------------------------

    def stall(self) -> None:
        self._stalled.set()
        self._blackhole = True

    def heal(self) -> None:
        self._blackhole = False
        self.drop_all()
        self._stalled.clear()

    def drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()

    # ---- plumbing -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepts.append(time.monotonic())
            with self._lock:
                self._sockets.append(client)
            if self._blackhole:
                continue  # accepted, then silence: the device's CONNECT is never answered
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self._stalled.is_set() and not self._closing:
                    time.sleep(0.05)  # hold the bytes: the peer sees a silent link
                if self.delay_s:
                    time.sleep(self.delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
