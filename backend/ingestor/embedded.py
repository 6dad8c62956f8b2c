"""The embedded path: take each device's telemetry inside amqtt, before its PUBACK.

amqtt 0.12.1 accepts shared subscriptions but delivers nothing to them, and its QoS 1
flow acknowledges a PUBLISH as soon as the message is in the session's in-memory queue
(mqtt/protocol/handler.py `_handle_qos1_message_flow`), before any subscriber got it;
a subscriber-based ingestor therefore loses what was acked when the process dies.

This plugin hooks `on_mqtt_packet_received`, which the connection's reader fires
(mqtt/protocol/handler.py `_reader_loop`) before it creates the task that handles the
PUBLISH and sends the PUBACK. Plugin calls and that task both go through the event
loop's ready queue, in that order, and this hook commits to the durable local queue
without ever awaiting: the commit is done before the PUBACK task runs. The price is a
synchronous SQLite commit on the broker's event loop per telemetry message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amqtt.mqtt.publish import PublishPacket
from amqtt.plugins.base import BasePlugin

from fieldline_backend.common import metrics
from fieldline_backend.common.topics import STATUS
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.ingestor.stamps import ArrivalClock, forwarded, headers_for

log = logging.getLogger(__name__)

PLUGIN = f"{__name__}.TelemetryCapturePlugin"


class TelemetryCapturePlugin(BasePlugin):
    @dataclass
    class Config:
        queue_path: str = ""

    def __init__(self, context) -> None:
        super().__init__(context)
        # Short: a locked file must not stall the broker's event loop for long.
        self.queue = LocalQueue(self.config.queue_path, busy_timeout=2.0)
        self.clock = ArrivalClock()
        self.captured = 0

    async def on_mqtt_packet_received(self, *, packet, session=None) -> None:
        # No await before the commit: see the module docstring.
        if not isinstance(packet, PublishPacket) or session is None:
            return
        topic = packet.topic_name or ""
        parsed = forwarded(topic)
        # status is followed by a subscriber (component.py); everything else a device
        # publishes is taken here, unknown topics too (storage dead-letters them).
        # The topic names the device; only that device may publish there (the broker's
        # ACL drops the message for the other subscribers, we must not take it either).
        if parsed is None or parsed.kind == STATUS or parsed.client_id != session.client_id:
            return
        if session.username != session.client_id:
            return
        headers = headers_for(parsed, topic, self.clock)
        try:
            self.queue.put_many([(bytes(packet.data or b""), headers)])
        except Exception:
            log.exception(
                "could not keep a message of %s durably; closing its connection so that "
                "no PUBACK goes out and the device sends it again",
                session.client_id,
            )
            self._refuse_puback(session.client_id)
            return
        self.captured += 1
        if not parsed.stored:
            metrics.INGESTOR_UNKNOWN_TOPIC.inc()

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
        self.queue.close()
