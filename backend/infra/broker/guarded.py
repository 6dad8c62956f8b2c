"""amqtt's Broker with the repairs and limits an embedded broker that admits devices needs.

Each one mirrors what Mosquitto 2 does with the project's config (docs/broker.md), so the
broker contract suite (tests/broker/) holds on both:

- CONNECT is read and checked before amqtt sees it: amqtt 0.12.1 handles the session of
  a CONNECT's client id (drops it, or takes over its connection) before it authenticates,
  so a refused impostor that knows a device's id would cut the device off. A refused
  CONNECT gets CONNACK 5 and never reaches amqtt's sessions. A last will must pass the
  same publish rule as a PUBLISH (amqtt publishes wills unchecked): else CONNACK 5.
- A socket that sends no whole CONNECT within `connect_timeout_s` is closed; past
  `max_connections` open sockets a new one is closed at once (amqtt's own
  `max-connections` makes it wait, holding the socket, without a timeout).
- No packet larger than `max_packet_size` is buffered: the size is known from the fixed
  header, before the body is read, and the connection is closed there.
- Retained messages go only to a subscription the client holds and may receive on:
  amqtt 0.12.1 sends, on every CONNECT, the retained messages matching any client's
  subscription, unchecked.
- A connection's writes leave in one send per turn of the event loop (coalescing.py):
  hundreds of PUBACKs released by one group commit are not hundreds of system calls.
- `could_receive(topic)` says whether any subscription could take a message, without
  amqtt's walk over every filter (exact filters by key, the few wildcard ones by
  matching): the embedded capture acknowledges telemetry no one subscribed to itself.
- Every authenticated connection is tracked while it runs (`_client_message_loop` lasts
  exactly as long), so `EmbeddedBroker.disconnect_invalid` can always reach it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.session import Session

from fieldline_backend.common import metrics
from fieldline_backend.infra.broker.coalescing import coalescing
from fieldline_backend.infra.broker.topics import topic_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerLimits:
    max_packet_size: int = 70000  # whole packet, as Mosquitto's max_packet_size
    connect_timeout_s: float = 10.0
    max_connections: int = 512


def default_max_connections() -> int:
    """Half the file descriptors this process may open: the rest stay for HTTP, the
    database and the queue whatever devices (or a flood of sockets) do."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, soft // 2)


class _ThrottledCount:
    """Per kind: None while within the interval of the last pass, else the count of
    events since that pass (this one included)."""

    def __init__(self, interval_s: float = 10.0):
        self.interval_s = interval_s
        self.last: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def due(self, kind: str) -> int | None:
        self.count[kind] = self.count.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.last.get(kind, float("-inf")) < self.interval_s:
            return None
        self.last[kind] = now
        count, self.count[kind] = self.count[kind], 0
        return count


class _ThrottledLog:
    """One warning per interval with the count since the last one: a flood of refused
    sockets must not become a flood of log lines."""

    def __init__(self, interval_s: float = 10.0):
        self.throttle = _ThrottledCount(interval_s)

    def warning(self, reason: str, message: str) -> None:
        count = self.throttle.due(reason)
        if count is not None:
            log.warning(
                "%s (%d time(s) in the last %.0f s)", message, count, self.throttle.interval_s
            )


class _AmqttFloodFilter(logging.Filter):
    """amqtt logs a line (WARNING/ERROR) for every socket that fails before or at
    CONNECT; through this filter, one such line per interval and kind, with the count."""

    PREFIXES = (
        "Failed to initialize client session",
        "No data from",
        "Invalid connection from",
        "[MQTT-3.1.0-1]",
    )

    def __init__(self, interval_s: float = 10.0):
        super().__init__()
        self.throttle = _ThrottledCount(interval_s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = next((p for p in self.PREFIXES if message.startswith(p)), None)
        if kind is None:
            return True
        count = self.throttle.due(kind)
        if count is None:
            return False
        interval = self.throttle.interval_s
        record.msg, record.args = f"{message} ({count} like it in the last {interval:.0f} s)", ()
        return True


def install_amqtt_log_filter() -> None:
    amqtt_log = logging.getLogger("amqtt.broker")
    if not any(isinstance(f, _AmqttFloodFilter) for f in amqtt_log.filters):
        amqtt_log.addFilter(_AmqttFloodFilter())


def _refuse(reason: str) -> None:
    metrics.BROKER_REFUSED.labels(reason=reason).inc()


class _PacketSizeGuard(ReaderAdapter):
    """Follows MQTT framing on the bytes read and refuses a packet whose fixed header
    announces more than `limit` bytes, before its body is read (and buffered)."""

    def __init__(self, inner: ReaderAdapter, limit: int, on_refuse: Any):
        self.inner = inner
        self.limit = limit
        self.on_refuse = on_refuse
        self.refused = False
        self.header: bytearray | None = bytearray()  # fixed header so far; None in a body
        self.body_left = 0

    async def read(self, n: int = -1) -> bytes:
        if self.refused:
            raise ConnectionResetError("packet too large")
        data = await self.inner.read(n)
        self._follow(data)
        if self.refused:
            raise ConnectionResetError("packet too large")
        return data

    def _follow(self, data: bytes) -> None:
        index = 0
        while index < len(data) and not self.refused:
            if self.header is None:  # inside a body
                step = min(self.body_left, len(data) - index)
                index += step
                self.body_left -= step
                if self.body_left == 0:
                    self.header = bytearray()
                continue
            self.header.append(data[index])
            index += 1
            if len(self.header) == 5 and self.header[-1] & 0x80:
                # A 5th length byte: malformed, past MQTT's 256 MB (amqtt would skip it
                # and read on, and this header would keep growing).
                self.refused = True
                self.on_refuse(128**4)
            elif len(self.header) >= 2 and not self.header[-1] & 0x80:
                remaining = sum((b & 0x7F) << (7 * i) for i, b in enumerate(self.header[1:]))
                if len(self.header) + remaining > self.limit:
                    self.refused = True
                    self.on_refuse(len(self.header) + remaining)
                elif remaining:
                    self.header, self.body_left = None, remaining
                else:
                    self.header = bytearray()

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _RecordingReader(ReaderAdapter):
    def __init__(self, inner: ReaderAdapter):
        self.inner = inner
        self.recorded = bytearray()

    async def read(self, n: int = -1) -> bytes:
        data = await self.inner.read(n)
        self.recorded += data
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _ReplayReader(ReaderAdapter):
    """Serves bytes already read from the socket again, then reads on."""

    def __init__(self, replay: bytes, inner: ReaderAdapter):
        self.replay = bytearray(replay)
        self.inner = inner

    async def read(self, n: int = -1) -> bytes:
        if not self.replay:
            return await self.inner.read(n)
        if n == -1 or n >= len(self.replay):
            data = bytes(self.replay)
            self.replay.clear()
            rest = n - len(data) if n != -1 else 0
            return data + (await self.inner.read(rest) if rest else b"")
        data = bytes(self.replay[:n])
        del self.replay[:n]
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


def _abort(writer: WriterAdapter) -> None:
    """Close the socket now, unsent data and all (amqtt's close() waits on a drain)."""
    transport = getattr(getattr(writer, "_writer", None), "transport", None)
    if transport is not None:
        transport.abort()
    if hasattr(writer, "is_closed"):
        writer.is_closed = True  # amqtt's StreamWriterAdapter writes nothing more


class GuardedBroker(Broker):
    IN_LOOP = "fieldline_in_message_loop"  # session attribute: CONNACK sent, loop running

    def __init__(self, *args: Any, directory: Any, limits: BrokerLimits, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.directory = directory
        self.limits = limits
        self.open_connections = 0
        self.connections: dict[int, tuple[Session, Any]] = {}
        self.throttled = _ThrottledLog()
        self._wildcards: list[str] | None = None  # filters with + or #; None: to be listed
        install_amqtt_log_filter()

    def could_receive(self, topic: str) -> bool:
        """Could a subscription held now take a message on `topic`? (A superset of whom
        amqtt delivers to: the ACL's receive check comes after, per subscriber.)"""
        subscriptions = self._subscriptions
        if subscriptions.get(topic):
            return True
        if self._wildcards is None:
            self._wildcards = [f for f in subscriptions if "+" in f or "#" in f]
        return any(subscriptions.get(f) and topic_matches(f, topic) for f in self._wildcards)

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        try:
            return await super().add_subscription(subscription, session)
        finally:
            self._wildcards = None  # after the add: a listing during its await would miss it

    async def _client_connected(
        self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter
    ) -> None:
        if self.open_connections >= self.limits.max_connections:
            _refuse("max_connections")
            self.throttled.warning(
                "max_connections",
                f"MQTT connection refused: {self.limits.max_connections} open already "
                "(FIELDLINE_MQTT_MAX_CONNECTIONS)",
            )
            _abort(writer)
            return
        self.open_connections += 1
        metrics.BROKER_CONNECTIONS.set(self.open_connections)
        writer = coalescing(writer)

        def too_large(size: int) -> None:
            _refuse("packet_too_large")
            self.throttled.warning(
                "packet_too_large",
                f"MQTT connection closed: a packet of {size} bytes is over "
                f"FIELDLINE_MQTT_MAX_PACKET_SIZE={self.limits.max_packet_size}",
            )
            _abort(writer)

        guarded = _PacketSizeGuard(reader, self.limits.max_packet_size, too_large)
        try:
            await super()._client_connected(listener_name, guarded, writer)
        finally:
            self.open_connections -= 1
            metrics.BROKER_CONNECTIONS.set(self.open_connections)

    async def _read_connect(self, reader: ReaderAdapter, writer: WriterAdapter) -> Any:
        """The CONNECT's payload (None when malformed: amqtt reads it again and answers
        as it does); a socket too slow to send it is closed."""
        try:
            connect = await asyncio.wait_for(
                ConnectPacket.from_stream(reader), self.limits.connect_timeout_s
            )
        except TimeoutError:
            _refuse("connect_timeout")
            self.throttled.warning(
                "connect_timeout",
                f"MQTT connection closed: no CONNECT within {self.limits.connect_timeout_s} s "
                "(FIELDLINE_MQTT_CONNECT_TIMEOUT_S)",
            )
            _abort(writer)
            raise MQTTError("no CONNECT in time") from None
        except Exception:
            return None, None
        return connect.payload, connect.variable_header

    def _will_allowed(self, username: str, header: Any, payload: Any) -> bool:
        if header is None or not header.will_flag:
            return True
        topic = payload.will_topic or ""
        if not topic or "+" in topic or "#" in topic or topic.startswith("$"):
            return False
        return self.directory.allows(username, topic, Action.PUBLISH)

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[Any, Session]:
        recording = _RecordingReader(reader)
        payload, header = await self._read_connect(recording, writer)
        if payload is not None and payload.client_id:
            account = self.directory.check(payload.client_id, payload.username, payload.password)
            refusal = None
            if account is None:
                refusal = "credentials"
            elif not self._will_allowed(account.username, header, payload):
                refusal = "will"
                _refuse("will_not_allowed")
                log.warning(
                    "CONNECT of %s refused: its last will topic %r is not one it may publish to",
                    payload.client_id,
                    (payload.will_topic or "")[:200],
                )
            if refusal:
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
                await writer.close()
                raise MQTTError(f"CONNECT refused for client id {payload.client_id!r} ({refusal})")
        replay = _ReplayReader(bytes(recording.recorded), reader)
        return await super()._initialize_client_session(replay, writer, remote_address, remote_port)

    async def _client_message_loop(self, client_session: Session, handler: Any) -> None:
        self.connections[id(handler)] = (client_session, handler)
        client_session.attributes[self.IN_LOOP] = True
        try:
            await super()._client_message_loop(client_session, handler)
        finally:
            client_session.attributes[self.IN_LOOP] = False
            self.connections.pop(id(handler), None)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Retained messages for a SUBSCRIBE this client made and holds, each checked
        against what it may receive. Nothing on CONNECT (amqtt calls this then for every
        client's filters): as Mosquitto, retained messages answer a SUBSCRIBE only."""
        if not session.attributes.get(self.IN_LOOP):
            return
        topic_filter = subscription[0]
        held = [
            qos
            for holder, qos in self._subscriptions.get(topic_filter, [])
            if holder.client_id == session.client_id
        ]
        handler = self._get_handler(session)
        if not held or handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic, Action.RECEIVE):
                continue
            qos = min(held[0], retained.qos if retained.qos is not None else held[0])
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(retained.topic, retained.data, qos, retain=True)
                )
            )
        if tasks:
            await asyncio.wait(tasks)
