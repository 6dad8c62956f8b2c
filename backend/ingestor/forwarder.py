"""MQTT -> queue: paho-mqtt 2 with a persistent session and manual acknowledgements.

Each message is handed to the queue publisher; its PUBACK goes out only from the
publisher's confirm callback, so the broker keeps (and after a crash redelivers) every
message the queue has not durably taken. The client id is fixed per replica and the
session is not clean, so the broker queues messages while this ingestor is down.
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fieldline_backend.common import metrics
from fieldline_backend.infra.queue import TelemetryPublisher
from fieldline_backend.ingestor.stamps import ArrivalClock, forwarded, headers_for

log = logging.getLogger(__name__)

SHARED_GROUP = "$share/ingestors/"
# Everything devices publish: telemetry, status, status/buffer (the SDK's drop reports),
# and topics storage does not know, which it dead-letters as "unknown topic" (stamps.py).
DEVICES = "devices/+/#"
STATUS = "devices/+/status"
# What replicas subscribed to before DEVICES covered them; left on connect, so that a
# persistent session does not get each message twice.
LEGACY = ("devices/+/telemetry", "devices/+/status", "devices/+/status/buffer")


class Forwarder:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        publisher: TelemetryPublisher,
        username: str | None = None,
        password: str | None = None,
        topics: tuple[str, ...] = (DEVICES,),
        shared: bool = True,
    ):
        self.host, self.port = host, port
        self.publisher = publisher
        self.clock = ArrivalClock()
        prefix = SHARED_GROUP if shared else ""
        self.subscriptions = [(prefix + t, 1) for t in topics]
        self.legacy = [prefix + t for t in LEGACY if t not in topics]
        self.forwarded = 0
        self.ignored = 0
        self.connected = threading.Event()
        self.stopping = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        # connect_async + loop_start: a broker that is down now is retried, not fatal.
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the ingestor: %s", reason_code)
            return
        client.subscribe(self.subscriptions)
        if self.legacy:
            client.unsubscribe(self.legacy)
        self.connected.set()
        log.info(
            "ingestor %s subscribed at %s:%s", client._client_id.decode(), self.host, self.port
        )

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        if not self.stopping:
            log.warning("ingestor lost the MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, client, _userdata, message: mqtt.MQTTMessage) -> None:
        metrics.INGESTOR_RECEIVED.inc()
        parsed = forwarded(message.topic)
        if parsed is None:
            self.ignored += 1
            metrics.INGESTOR_IGNORED.inc()
            client.ack(message.mid, message.qos)
            return
        headers = headers_for(parsed, message.topic, self.clock)
        if not parsed.stored:
            metrics.INGESTOR_UNKNOWN_TOPIC.inc()
        mid, qos = message.mid, message.qos
        arrived = time.monotonic()

        def confirmed() -> None:
            client.ack(mid, qos)
            metrics.INGESTOR_CONFIRMED.inc()
            metrics.INGESTOR_CONFIRM_SECONDS.observe(time.monotonic() - arrived)

        self.publisher.publish(message.payload, headers, confirmed)
        self.forwarded += 1
