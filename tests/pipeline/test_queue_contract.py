"""One contract, both queue adapters: RabbitMQ (a private vhost on the shared server)
and the durable local queue. Plus `fieldline deadletters list|replay` on each."""

from __future__ import annotations

import threading

import pytest

from fieldline_backend.cli import main
from fieldline_backend.infra.queue import REASON_HEADER
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.infra.queue.rabbitmq import (
    RabbitConsumer,
    RabbitDeadLetters,
    RabbitPublisher,
)
from tests.pipeline.support import Vhost
from tests.support.servers import wait_for


class Adapters:
    def __init__(self, kind, publisher, consumer_factory, dead_letters, env):
        self.kind = kind
        self.publisher = publisher
        self.consumer_factory = consumer_factory
        self.dead_letters = dead_letters
        self.env = env


@pytest.fixture(params=["rabbitmq", "local"])
def queue(request, tmp_path, monkeypatch):
    if request.param == "rabbitmq":
        vhost = Vhost(request.getfixturevalue("amqp_url")).create()
        publisher = RabbitPublisher(vhost.url, max_in_flight=100)
        adapters = Adapters(
            "rabbitmq",
            publisher,
            lambda: RabbitConsumer(vhost.url, prefetch=500),
            RabbitDeadLetters(vhost.url),
            {"FIELDLINE_AMQP_URL": vhost.url},
        )
        yield adapters
        publisher.close()
        vhost.delete()
    else:
        path = tmp_path / "data" / "queue.db"
        local = LocalQueue(path)
        yield Adapters(
            "local",
            local,
            lambda: LocalQueue(path),
            LocalQueue(path),
            {"FIELDLINE_DATA_DIR": str(tmp_path / "data")},
        )
        local.close()


def publish(queue, count: int, start: int = 0) -> None:
    confirmed = threading.Semaphore(0)
    for i in range(start, start + count):
        headers = {"client_id": "dev-1", "topic": "devices/dev-1/telemetry", "received_at": i}
        queue.publisher.publish(f"m{i}".encode(), headers, confirmed.release)
    for _ in range(count):
        assert confirmed.acquire(timeout=30), "a publish was never confirmed"


def receive_all(consumer, count: int) -> list:
    got = []
    wait_for(
        lambda: got.extend(consumer.receive(count - len(got), 0.2)) or len(got) >= count,
        30,
        f"{count} messages",
    )
    return got


def test_confirmed_messages_arrive_in_order_with_headers_and_leave_when_acked(queue):
    publish(queue, 120)
    consumer = queue.consumer_factory()
    got = receive_all(consumer, 120)
    assert [m.body for m in got] == [f"m{i}".encode() for i in range(120)]
    assert got[5].headers == {
        "client_id": "dev-1",
        "topic": "devices/dev-1/telemetry",
        "received_at": 5,
    }
    consumer.ack(got)
    consumer.close()
    again = queue.consumer_factory()
    assert again.receive(10, 0.5) == []
    again.close()


def test_unacked_messages_come_back_to_the_next_consumer(queue):
    publish(queue, 10)
    first = queue.consumer_factory()
    taken = receive_all(first, 10)
    first.ack(taken[:0])
    if queue.kind == "local":
        first.lease = 0  # the local queue hands out again when the lease ends
        first.db.execute("UPDATE messages SET claimed_until = 0")
        first.db.commit()
    first.close()
    second = queue.consumer_factory()
    again = receive_all(second, 10)
    assert sorted(m.body for m in again) == sorted(m.body for m in taken)
    second.ack(again)
    second.close()


def test_dead_letters_keep_their_reason_list_and_replay(queue, monkeypatch, capsys):
    publish(queue, 3)
    consumer = queue.consumer_factory()
    got = receive_all(consumer, 3)
    consumer.dead_letter(got[1], "invalid payload: not JSON")
    consumer.ack(got)
    letters = queue.dead_letters.list()
    assert [(letter.body, letter.reason) for letter in letters] == [
        (b"m1", "invalid payload: not JSON")
    ]
    assert queue.dead_letters.list() == letters, "listing must not take them away"

    for key, value in queue.env.items():
        monkeypatch.setenv(key, value)
    if queue.kind == "rabbitmq":
        monkeypatch.delenv("FIELDLINE_DATA_DIR", raising=False)
    assert main(["deadletters", "list"]) == 0
    out = capsys.readouterr().out
    assert "invalid payload: not JSON" in out and "m1" in out
    assert main(["deadletters", "replay"]) == 0
    assert "replayed 1" in capsys.readouterr().out
    assert queue.dead_letters.list() == []
    back = receive_all(consumer, 1)
    assert back[0].body == b"m1" and REASON_HEADER not in back[0].headers
    consumer.ack(back)
    consumer.close()
