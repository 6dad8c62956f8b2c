"""HTTP connections that cannot exhaust the process: a bound, and deadlines on the client.

20k slow connections (slowloris: open, send half a request head, trickle) took every
file descriptor of `fieldline up`; the embedded MQTT broker lives in the same process,
so devices could not connect either. uvicorn 0.55 (h11 protocol; httptools is not
installed, and these hooks are h11's) has no defence of its own against that:

- `timeout_keep_alive` is armed only after a response; a connection that never finishes
  its request head has no timer at all (h11_impl.H11Protocol.on_response_complete);
- `limit_concurrency` answers 503 only once a full request head arrived, and counts a
  connection only after accepting it: slow heads are never refused.

`GuardedH11Protocol` adds, per connection (settings in docs/deploy.md, "HTTP limits"):

- a bound on open HTTP connections (FIELDLINE_HTTP_MAX_CONNECTIONS). At the bound, a new
  connection first evicts the connection that has waited longest for its request head
  (a slow or idle client holding a slot); if every connection is busy with a request,
  the new one gets a 503 and is closed at once, so it holds no descriptor;
- a header deadline (FIELDLINE_HTTP_HEADER_TIMEOUT): the request head must be complete
  this long after the connection opened (or after the first byte of a following request
  on a kept-alive connection). Trickling bytes does not extend it;
- an idle timeout (FIELDLINE_HTTP_IDLE_TIMEOUT) while a request body is read: that long
  without a byte (and not paused by us) closes the connection.

- a cap on the request head (FIELDLINE_HTTP_MAX_HEADER_BYTES): a longer one is a 431.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import OrderedDict

import h11
import uvicorn
from prometheus_client import Counter
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HTTP_CONNECTIONS_DROPPED = Counter(
    "fieldline_http_connections_dropped_total",
    "HTTP connections closed by the server's limits, by reason "
    "(over_limit, evicted, header_timeout, idle_timeout, head_too_large)",
    ["reason"],
)


def _raw_answer(status: str, detail: str, extra: str = "") -> bytes:
    """A whole HTTP answer, written raw: no request was read, and none will be."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


REFUSED = _raw_answer(
    "503 Service Unavailable",
    "too many open HTTP connections (FIELDLINE_HTTP_MAX_CONNECTIONS); retry",
    "Retry-After: 1\r\n",
)
HEAD_TOO_LARGE = _raw_answer(
    "431 Request Header Fields Too Large",
    "request line and headers too large (FIELDLINE_HTTP_MAX_HEADER_BYTES)",
)


class GuardedH11Protocol(H11Protocol):
    # Set by guarded_protocol(); class attributes so uvicorn can build it with its usual
    # (config, server_state, app_state) arguments.
    max_connections = 1000
    header_timeout = 10.0
    idle_timeout = 30.0
    max_head_bytes = 16 * 1024

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Connections waiting for a request head, oldest first, shared by all connections
        # of this server. An OrderedDict: taking the oldest stays O(1) after many
        # removals at the front (a plain dict's iteration walks the removed slots).
        state = self.server_state
        if not hasattr(state, "fieldline_waiting"):
            state.fieldline_waiting = OrderedDict()
        self.waiting: OrderedDict[GuardedH11Protocol, float] = state.fieldline_waiting
        self.refused = False
        self.deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0  # of the request head being received

    # -- the bound --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections and not self._evict_oldest_waiting():
            self.refused = True
            self.transport = transport
            HTTP_CONNECTIONS_DROPPED.labels(reason="over_limit").inc()
            log.warning("HTTP connection refused: %d open, the limit", len(self.connections))
            transport.write(REFUSED)
            transport.close()
            return
        super().connection_made(transport)
        self._await_head(arm=True)

    def _evict_oldest_waiting(self) -> bool:
        if not self.waiting:
            return False
        victim, _since = self.waiting.popitem(last=False)
        HTTP_CONNECTIONS_DROPPED.labels(reason="evicted").inc()
        log.warning("HTTP connection closed: the oldest waiting for its head, at the limit")
        victim._drop()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.waiting.pop(self, None)
        self._cancel_deadline()
        super().connection_lost(exc)

    # -- the deadlines ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            HTTP_CONNECTIONS_DROPPED.labels(reason="head_too_large").inc()
            log.warning("HTTP request refused: head over %d bytes", self.max_head_bytes)
            self.transport.write(HEAD_TOO_LARGE)
            self.waiting.pop(self, None)
            self._cancel_deadline()
            self.transport.close()
            return
        super().data_received(data)
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:  # the head is not complete yet
            self._await_head(arm=self.deadline is None)
        elif state is h11.SEND_BODY:
            self.head_bytes = 0
            self.waiting.pop(self, None)
            self._arm(self.idle_timeout, self._idle_expired)
        else:  # request read: the app works, the client may rightly say nothing
            self.head_bytes = 0
            self.waiting.pop(self, None)
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Kept alive and waiting for the next head: uvicorn's keep-alive timer closes it
        # if nothing comes; it is first in line to make room at the bound.
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.waiting[self] = time.monotonic()
            self.waiting.move_to_end(self)

    def _head_too_large(self, data: bytes) -> bool:
        # h11's max_incomplete_event_size only applies to a head that arrives in pieces;
        # one that comes whole in a single read would pass at any size. Count it here.
        end = data.find(b"\r\n\r\n")
        self.head_bytes += len(data) if end < 0 else end + 4
        return self.head_bytes > self.max_head_bytes

    def _await_head(self, arm: bool) -> None:
        if self not in self.waiting:
            self.waiting[self] = time.monotonic()
        if arm:
            self._arm(self.header_timeout, self._head_expired)

    def _head_expired(self) -> None:
        HTTP_CONNECTIONS_DROPPED.labels(reason="header_timeout").inc()
        log.warning("HTTP connection closed: no complete request head in %s s", self.header_timeout)
        self._drop()

    def _idle_expired(self) -> None:
        if self.flow is not None and self.flow.read_paused:
            # We stopped reading (the app is slow to take the body): not the client's fault.
            self._arm(self.idle_timeout, self._idle_expired)
            return
        HTTP_CONNECTIONS_DROPPED.labels(reason="idle_timeout").inc()
        log.warning("HTTP connection closed: request body silent for %s s", self.idle_timeout)
        self._drop()

    def _arm(self, seconds: float, callback) -> None:
        self._cancel_deadline()
        self.deadline = self.loop.call_later(seconds, callback)

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _drop(self) -> None:
        self.waiting.pop(self, None)
        self._cancel_deadline()
        self.transport.abort()  # no lingering: the descriptor is freed now


def guarded_protocol(
    max_connections: int, header_timeout: float, idle_timeout: float, max_head_bytes: int
) -> type:
    """A GuardedH11Protocol subclass with these limits (one per server)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "max_connections": max_connections,
            "header_timeout": header_timeout,
            "idle_timeout": idle_timeout,
            "max_head_bytes": max_head_bytes,
        },
    )


KERNEL_BACKLOG = 2048  # connections the kernel holds for us (uvicorn's default backlog)


def accept_batch(max_connections: int) -> int:
    """How many connections the event loop accepts per wake-up (see GuardedServer)."""
    return max(16, min(KERNEL_BACKLOG, max_connections // 4))


class GuardedServer(uvicorn.Server):
    """uvicorn's server with the accept batch and the kernel's queue set apart.

    asyncio accepts up to `backlog` connections each time the listening socket wakes it,
    and uses the same number for the kernel's queue. A batch of 2048 means thousands of
    sockets open at once (each accepted connection is only seen by its protocol, and can
    be closed, two loop turns later), and at a bound of 1000 a fresh /healthz accepted
    in the same batch is evicted before its request is read. So uvicorn gets a small
    backlog (the batch, `accept_batch`), and once listening, the socket is told again to
    keep a long kernel queue, which costs this process no descriptor.
    """

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in getattr(self, "servers", []):
            for listener in server.sockets or ():
                with socket.socket(fileno=os.dup(listener.fileno())) as same:
                    same.listen(KERNEL_BACKLOG)


def raise_open_files_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (many systems start at 1024); (soft, hard)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return (0, 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("could not raise the open files limit to %s: %s", hard, error)
    return soft, hard
