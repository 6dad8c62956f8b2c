"""The crash the issue measured, made deterministic: the ingestor dies after RabbitMQ
confirmed its messages but before it sent the PUBACKs. Mosquitto delivers them all
again to the restarted ingestor (same client id, persistent session); storage gets each
message twice and stores each reading once: readings with ts by their key, readings
without ts by (device, boot, seq) - their second copy carries a new arrival stamp."""

from __future__ import annotations

import threading

import pytest

from fieldline_backend.infra.broker import backend_credentials
from fieldline_backend.infra.queue.rabbitmq import RabbitPublisher
from fieldline_backend.ingestor.forwarder import Forwarder
from tests.pipeline.support import reading
from tests.support.servers import wait_for


class ConfirmsWithoutPuback:
    """Publishes to RabbitMQ, counts the confirms, never lets the PUBACK go out."""

    def __init__(self, inner):
        self.inner = inner
        self.confirmed = 0
        self.lock = threading.Lock()

    def publish(self, body, headers, on_confirmed):
        def swallow():
            with self.lock:
                self.confirmed += 1

        self.inner.publish(body, headers, swallow)


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_crash_between_confirm_and_puback_stores_each_reading_once(start_pipeline):
    with start_pipeline(("mqtt_auth", "storage")) as pipeline:
        settings = pipeline.settings
        host, port = settings.broker_address
        username, password = backend_credentials(settings)
        publisher = RabbitPublisher(settings.amqp_url)
        doomed = ConfirmsWithoutPuback(publisher)
        first = Forwarder(host, port, "ingestor-crash", doomed, username, password)
        first.start()
        wait_for(first.connected.is_set, 20, "the first ingestor to subscribe")

        device = pipeline.account("owner-r", "redelivered")
        count = 40
        base = 1_764_000_000_000
        # Half with ts, half without (stamped on arrival, deduplicated by boot/seq).
        device.publish_all(
            [reading(s, ts=base + s if s % 2 else None, t=float(s)) for s in range(count)]
        )
        wait_for(lambda: doomed.confirmed == count, 30, "RabbitMQ to confirm every message")
        pipeline.wait_stored({device.device_id: count})

        # The crash: the socket goes, no DISCONNECT, no PUBACK ever sent.
        first.client.loop_stop()
        first.client.socket().close()

        second = Forwarder(host, port, "ingestor-crash", publisher, username, password)
        second.start()
        stats = wait_for(
            lambda: (s := pipeline.storage_stats())["stored_messages"] >= 2 * count and s,
            60,
            "storage to see every message a second time",
        )
        assert second.forwarded == count, "Mosquitto redelivered what was never PUBACKed"
        assert stats["duplicates_skipped"] == count // 2
        assert pipeline.stored_counts([device.device_id]) == {device.device_id: count}
        store = pipeline.store()
        values = store.query([device.device_id], ["t"], 0, 2**53)[device.device_id]["t"]
        assert sorted(v for _, v in values) == [float(s) for s in range(count)]
        store.close()
        second.stop()
        publisher.close()
        device.close()
