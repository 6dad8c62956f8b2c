"""One contract, both queue adapters: RabbitMQ (a private vhost on the shared server)
and the durable local queue. Plus `fieldline deadletters list|replay` on each."""

from __future__ import annotations

import inspect
import socket
import threading
import time
from typing import Generic, Protocol

import pytest

from fieldline_backend.cli import main
from fieldline_backend.common.settings import Settings
from fieldline_backend.infra.queue import (
    DEAD_QUEUE,
    REASON_HEADER,
    STORAGE_QUEUE,
    DeadLetterBox,
    QueueProbe,
    QueueUnavailable,
    TelemetryConsumer,
    TelemetryPublisher,
    open_probe,
    open_publisher,
)
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.infra.queue.rabbitmq import (
    RabbitConsumer,
    RabbitDeadLetters,
    RabbitPublisher,
)
from tests.pipeline.support import Vhost
from tests.support.servers import free_port, wait_for


class Adapters:
    def __init__(self, kind, publisher, consumer_factory, dead_letters, env, unreachable=()):
        self.kind = kind
        self.publisher = publisher
        self.consumer_factory = consumer_factory
        self.dead_letters = dead_letters  # also the probe (depth, reachable)
        self.env = env
        self.unreachable = unreachable  # factories of probes on a queue that does not answer


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
            unreachable=(
                lambda: RabbitDeadLetters(f"amqp://guest:guest@127.0.0.1:{free_port()}/"),
                lambda: RabbitDeadLetters(vhost.url.rsplit("/", 1)[0] + "/no-such-vhost"),
                black_hole_probe,
            ),
        )
        yield adapters
        publisher.close()
        vhost.delete()
        while _black_holes:
            _black_holes.pop().close()
    else:
        path = tmp_path / "data" / "queue.db"
        local = LocalQueue(path)
        yield Adapters(
            "local",
            local,
            lambda: LocalQueue(path),
            LocalQueue(path),
            {"FIELDLINE_DATA_DIR": str(tmp_path / "data")},
            unreachable=(lambda: closed(LocalQueue(path)),),
        )
        local.close()


def closed(queue: LocalQueue) -> LocalQueue:
    queue.close()
    return queue


_black_holes: list[socket.socket] = []


def black_hole_probe() -> RabbitDeadLetters:
    """A port that accepts TCP connections and never says a word: only the probe's
    timeout ends the AMQP handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    _black_holes.append(listener)  # kept open (and unaccepted) until the test ends
    port = listener.getsockname()[1]
    return RabbitDeadLetters(f"amqp://guest:guest@127.0.0.1:{port}/", probe_timeout=0.5)


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


# ---- the probe: depth() and reachable(), what metrics and /readyz ask ------------------


def depths(probe) -> dict[str, int]:
    return {name: probe.depth(name) for name in (STORAGE_QUEUE, DEAD_QUEUE)}


def assert_depths(probe, expected: dict[str, int]) -> None:
    """RabbitMQ counts an ack a moment after it is sent: allow a short settle."""
    deadline = time.monotonic() + 5
    got = depths(probe)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        got = depths(probe)
    assert got == expected, f"queue depths: expected {expected}, got {got}"


def test_depth_counts_what_waits_in_the_storage_queue_and_the_dead_letters(queue):
    probe = queue.dead_letters
    publish(queue, 5)
    assert_depths(probe, {STORAGE_QUEUE: 5, DEAD_QUEUE: 0})
    consumer = queue.consumer_factory()
    got = receive_all(consumer, 5)
    consumer.dead_letter(got[0], "invalid payload: not JSON")
    consumer.ack(got)
    assert_depths(probe, {STORAGE_QUEUE: 0, DEAD_QUEUE: 1})
    assert probe.depth() == 0, "depth() with no argument is the storage queue's"
    with pytest.raises(ValueError, match="unknown queue"):
        probe.depth("telemetry.elsewhere")
    consumer.close()


def test_reachable_says_whether_the_queue_answers_now_within_the_timeout(queue):
    if queue.kind == "rabbitmq":  # the publisher declares the queues once connected
        assert queue.publisher.wait_ready(10), "the publisher never connected"
    assert queue.dead_letters.reachable() is True
    for make in queue.unreachable:
        probe = make()
        started = time.monotonic()
        answer = probe.reachable()
        elapsed = time.monotonic() - started
        assert answer is False, f"{probe!r}: expected reachable() False, got {answer!r}"
        assert elapsed < 3, f"{probe!r}: reachable() took {elapsed:.1f} s, expected < 3 s"
        with pytest.raises(QueueUnavailable):
            probe.depth()


def test_the_probe_waits_no_longer_than_the_setting_says(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks AMQP
    try:
        url = f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}/"
        settings = Settings(amqp_url=url, data_dir=tmp_path, queue_probe_timeout=0.3)
        probe = open_probe(settings)
        started = time.monotonic()
        answer = probe.reachable()
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert answer is False, f"expected reachable() False, got {answer!r}"
    # The default (2 s) would take longer than this: the setting is what bounds the wait.
    assert elapsed < 1.2, f"reachable() took {elapsed:.2f} s with a 0.3 s probe timeout"


def test_open_publisher_takes_its_window_from_the_settings(tmp_path):
    """FIELDLINE_INGESTOR_MAX_IN_FLIGHT bounds the unconfirmed messages of the publisher
    open_publisher makes: with RabbitMQ away nothing is confirmed, so the third publish
    of a window of 2 waits."""
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"  # refused: never confirms
    settings = Settings(amqp_url=url, data_dir=tmp_path, ingestor_max_in_flight=2)
    publisher = open_publisher(settings)
    returned = []

    def publish_three() -> None:
        for i in range(3):
            publisher.publish(b"m", {"i": i}, lambda: None)
            returned.append(i)

    threading.Thread(target=publish_three, daemon=True).start()
    time.sleep(0.5)
    try:
        assert returned == [0, 1], f"publish calls returned: expected [0, 1], got {returned}"
    finally:
        publisher.slots.release()  # let the waiting third call end
        publisher.close()


# ---- every adapter has the port's methods, with the port's signatures ------------------

PORTS = {
    TelemetryPublisher: (RabbitPublisher, LocalQueue),
    TelemetryConsumer: (RabbitConsumer, LocalQueue),
    DeadLetterBox: (RabbitDeadLetters, LocalQueue),
    QueueProbe: (RabbitDeadLetters, LocalQueue),
}


def port_methods(port: type) -> dict[str, inspect.Signature]:
    methods = {}
    for cls in reversed(port.__mro__):
        if cls in (Protocol, Generic, object):
            continue
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("_"):
                methods[name] = inspect.signature(value)
    return methods


def mismatch(port_sig: inspect.Signature, adapter_sig: inspect.Signature) -> str | None:
    """None when a caller of the port's method can call the adapter's the same way: the
    same parameters in the same order with the same defaults; extra ones have defaults."""
    port_params = list(port_sig.parameters.values())
    adapter_params = list(adapter_sig.parameters.values())
    for i, expected in enumerate(port_params):
        got = adapter_params[i] if i < len(adapter_params) else None
        if got is None or (got.name, got.kind, got.default) != (
            expected.name,
            expected.kind,
            expected.default,
        ):
            return f"parameter {i}: expected {expected}, got {got}"
    extra = [p for p in adapter_params[len(port_params) :] if p.default is inspect.Parameter.empty]
    return f"extra parameters without a default: {extra}" if extra else None


@pytest.mark.parametrize(
    ("port", "adapter"),
    [(port, adapter) for port, adapters in PORTS.items() for adapter in adapters],
    ids=lambda item: item.__name__,
)
def test_adapter_matches_its_port(port, adapter):
    problems = []
    for name, signature in port_methods(port).items():
        implementation = getattr(adapter, name, None)
        if implementation is None:
            problems.append(f"{name}: missing")
            continue
        problem = mismatch(signature, inspect.signature(implementation))
        if problem:
            problems.append(
                f"{name}{signature} vs {name}{inspect.signature(implementation)}: {problem}"
            )
    assert problems == [], f"{adapter.__name__} against {port.__name__}: {problems}"
