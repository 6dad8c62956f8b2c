"""The embedded path: take each device's telemetry inside amqtt, before its PUBACK.

amqtt 0.12.1 accepts shared subscriptions but delivers nothing to them, and its QoS 1
flow acknowledges a PUBLISH as soon as the message is in the session's in-memory queue
(mqtt/protocol/handler.py `_handle_qos1_message_flow`), before any subscriber got it;
a subscriber-based ingestor therefore loses what was acked when the process dies.

Capture happens in amqtt's handler of an incoming PUBLISH
(`BrokerProtocolHandler.handle_publish`, wrapped once below): the connection's reader
(mqtt/protocol/handler.py `_reader_loop`) creates one task per packet, in order, and the
wrapper, before its first await, hands the message to a group commit; it goes on to
amqtt's own handler, PUBACK included, only after the commit that holds the message. A
message whose commit failed gets no PUBACK and its connection is dropped, so the device
sends it again. (Until 2026-12 this was a plugin hook on every received packet: a task
more per message, ~15% of the broker's loop under load.)

Group commit: one SQLite transaction (one fsync) for every message that arrived while
the previous one was being written, run in a thread so that the broker's event loop
keeps reading. A lone message waits for one commit, as before; under load a commit
takes hundreds (docs/pipeline.md has the numbers).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.plugins.base import BasePlugin

from fieldline_backend.common import metrics
from fieldline_backend.common.topics import STATUS
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.ingestor.stamps import ArrivalClock, forwarded, headers_for

log = logging.getLogger(__name__)

PLUGIN = f"{__name__}.TelemetryCapturePlugin"

# Each broker's plugin manager -> its capture plugin (None: this broker captures
# nothing). Weak: a stopped broker must not stay here.
_captures: weakref.WeakKeyDictionary[object, TelemetryCapturePlugin | None] = (
    weakref.WeakKeyDictionary()
)


def _capture_of(handler: BrokerProtocolHandler) -> TelemetryCapturePlugin | None:
    manager = handler.plugins_manager
    try:
        return _captures[manager]
    except KeyError:
        plugin = next((p for p in manager.plugins if isinstance(p, TelemetryCapturePlugin)), None)
        _captures[manager] = plugin
        return plugin


def _capture_publishes() -> None:
    """Wrap amqtt's handler of an incoming PUBLISH: a captured message waits for its
    commit; one that was not kept is dropped (no PUBACK, no delivery)."""
    if getattr(BrokerProtocolHandler.handle_publish, "captures", False):
        return
    handle_publish = BrokerProtocolHandler.handle_publish

    async def captured(self, publish_packet: PublishPacket) -> None:
        capture = _capture_of(self)
        # No await before take(): the tasks of one connection start in packet order.
        kept = capture.take(publish_packet, self.session) if capture is not None else None
        if kept is not None:
            if not await kept:
                return
            if await capture.acked_unobserved(self, publish_packet):
                return
        await handle_publish(self, publish_packet)

    captured.captures = True
    BrokerProtocolHandler.handle_publish = captured


class GroupCommit:
    """Messages that arrive while a commit is being written go in the next one."""

    def __init__(self, queue: LocalQueue, refuse) -> None:
        self.queue = queue
        self.refuse = refuse  # client_id -> drop its connection
        self.pending: list[tuple[bytes, dict, str, asyncio.Future[bool], float]] = []
        self.writer: asyncio.Task | None = None
        self.commits = 0
        self.messages = 0

    def add(self, body: bytes, headers: dict, client_id: str) -> asyncio.Future[bool]:
        kept = asyncio.get_running_loop().create_future()
        self.pending.append((body, headers, client_id, kept, time.monotonic()))
        if self.writer is None:
            self.writer = asyncio.create_task(self._write())
        return kept

    async def _write(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                ok = await self._commit(batch)
                if ok:  # once per commit, its oldest message: per message costs the loop ~4%
                    metrics.INGESTOR_CONFIRM_SECONDS.observe(time.monotonic() - batch[0][4])
                for _, _, client_id, kept, _ in batch:
                    if not ok:
                        self.refuse(client_id)
                    if not kept.done():
                        kept.set_result(ok)
        finally:
            self.writer = None

    async def _commit(self, batch) -> bool:
        try:
            await asyncio.to_thread(self.queue.put_many, [(m[0], m[1]) for m in batch])
        except Exception:
            devices = sorted({m[2] for m in batch})
            log.exception(
                "could not keep %d messages durably; closing the connections of %s so that "
                "no PUBACK goes out and the devices send them again",
                len(batch),
                ", ".join(devices[:5]) + (" ..." if len(devices) > 5 else ""),
            )
            return False
        self.commits += 1
        self.messages += len(batch)
        return True

    async def drain(self) -> None:
        while self.writer is not None:
            await asyncio.shield(self.writer)


class TelemetryCapturePlugin(BasePlugin):
    @dataclass
    class Config:
        queue_path: str = ""

    def __init__(self, context) -> None:
        super().__init__(context)
        # Short: a locked file must not stall the broker's event loop for long.
        self.queue = LocalQueue(self.config.queue_path, busy_timeout=2.0)
        self.commit = GroupCommit(self.queue, self._refuse_puback)
        self.clock = ArrivalClock()
        self.captured = 0
        _capture_publishes()

    def take(self, packet: PublishPacket, session) -> asyncio.Future[bool] | None:
        """The future of the commit that holds this PUBLISH, or None when it is not
        taken here."""
        if session is None:
            return None
        topic = packet.topic_name or ""
        parsed = forwarded(topic)
        # status is followed by a subscriber (component.py); everything else a device
        # publishes is taken here, unknown topics too (storage dead-letters them).
        # The topic names the device; only that device may publish there (the broker's
        # ACL drops the message for the other subscribers, we must not take it either).
        if parsed is None or parsed.kind == STATUS or parsed.client_id != session.client_id:
            return None
        if session.username != session.client_id:
            return None
        headers = headers_for(parsed, topic, self.clock)
        kept = self.commit.add(bytes(packet.data or b""), headers, session.client_id)
        self.captured += 1
        if not parsed.stored:
            metrics.INGESTOR_UNKNOWN_TOPIC.inc()
        return kept

    async def acked_unobserved(self, handler: BrokerProtocolHandler, packet: PublishPacket) -> bool:
        """A committed message no subscription could receive (and not to be retained) is
        done here: its PUBACK goes out (QoS 1) without amqtt's delivery (a task, a
        wait on four futures, the publish ACL's plugin tasks and a walk over every
        subscription, per message; telemetry has no subscriber on the embedded broker
        unless someone, such as a backend account, subscribed to it)."""
        broker = getattr(self.context, "_broker_instance", None)
        topic = packet.topic_name or ""
        if (
            packet.retain_flag
            or packet.qos not in (0, 1)
            or "+" in topic  # amqtt closes the connection over these; let it
            or "#" in topic
            or not hasattr(broker, "could_receive")
            or broker.could_receive(topic)
        ):
            return False
        if packet.qos == 1:
            # amqtt's own send: its write lock, drain (a device that never reads its
            # PUBACKs is not buffered for without end) and keepalive.
            await handler._send_packet(PubackPacket.build(packet.variable_header.packet_id))
        return True

    def _refuse_puback(self, client_id: str) -> None:
        """Stop this connection's writes now (the PUBACK task runs after us) and drop it."""
        broker = getattr(self.context, "_broker_instance", None)
        entry = broker.sessions.get(client_id) if broker is not None else None
        writer = getattr(entry[1], "writer", None) if entry else None
        if writer is None:
            return
        writer.is_closed = True  # amqtt's StreamWriterAdapter.write() is then a no-op
        transport = getattr(getattr(writer, "_writer", None), "transport", None)
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        await self.commit.drain()
        self.queue.close()
