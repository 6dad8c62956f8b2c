"""FIELDLINE_AMQP_QUORUM=true (a RabbitMQ cluster, docs/deploy.md): the ingestor's
publisher and storage's consumer declare telemetry.storage and telemetry.dead as quorum
queues on a real RabbitMQ (a single node serves quorum queues too), and a message goes
through."""

from __future__ import annotations

import threading

import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.infra.queue import open_consumer, open_publisher
from tests.pipeline.support import Vhost, rabbitmqctl

pytestmark = pytest.mark.real


def test_quorum_setting_declares_quorum_queues_and_a_message_passes(
    amqp_url, tmp_path, monkeypatch
):
    vhost = Vhost(amqp_url).create()
    try:
        monkeypatch.setenv("FIELDLINE_AMQP_QUORUM", "true")
        settings = Settings(data_dir=tmp_path, amqp_url=vhost.url)
        assert settings.amqp_quorum is True
        publisher = open_publisher(settings)
        confirmed = threading.Event()
        publisher.publish(b'{"values": {"t": 1}}', {"client_id": "dev-q"}, confirmed.set)
        assert confirmed.wait(20), "RabbitMQ never confirmed the message"
        publisher.close()
        consumer = open_consumer(settings, prefetch=10)
        try:
            messages = consumer.receive(10, 5.0)
            assert [m.body for m in messages] == [b'{"values": {"t": 1}}']
            consumer.ack(messages)
        finally:
            consumer.close()
        listed = rabbitmqctl("list_queues", "-p", vhost.name, "name", "type", "--no-table-headers")
        rows = [line.split() for line in listed.splitlines()]
        types = {
            row[0]: row[1] for row in rows if len(row) == 2 and row[0].startswith("telemetry.")
        }
        assert types == {"telemetry.storage": "quorum", "telemetry.dead": "quorum"}, listed
    finally:
        vhost.delete()
