"""The RabbitMQ consumer: a BlockingConnection with a prefetch window; batches are acked
with `multiple`; a dead letter is published (confirmed) to `telemetry.dead` with its
reason before the original is acked (with its batch)."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pika

from fieldline_backend.infra.queue import (
    DEAD_EXCHANGE,
    REASON_HEADER,
    STORAGE_QUEUE,
    QueueMessage,
    QueueUnavailable,
)
from fieldline_backend.infra.queue.rabbitmq_connection import (
    CONNECTION_ERRORS,
    close_quietly,
    declare_topology,
    parameters,
    publish_persistent,
    unreachable,
)


class RabbitConsumer:
    def __init__(self, url: str, prefetch: int = 2000, quorum: bool = False):
        self.url = url
        self.prefetch = prefetch
        self.quorum = quorum
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        self.buffer: collections.deque[QueueMessage] = collections.deque()

    def _ensure(self):
        if self.channel is not None and self.channel.is_open:
            return self.channel
        self._drop()
        try:
            self.connection = pika.BlockingConnection(parameters(self.url))
            channel = self.connection.channel()
            declare_topology(channel, self.quorum)
            channel.basic_qos(prefetch_count=self.prefetch)
            channel.confirm_delivery()  # for dead letters
            channel.basic_consume(STORAGE_QUEUE, self._on_message)
        except CONNECTION_ERRORS as error:
            self._drop()
            raise unreachable(self.url, error) from error
        self.channel = channel
        return channel

    def _on_message(self, _channel, method, properties, body) -> None:
        headers = dict(properties.headers or {})
        self.buffer.append(QueueMessage(body, headers, method.delivery_tag))

    def receive(self, max_messages: int, max_wait: float) -> list[QueueMessage]:
        self._ensure()
        deadline = time.monotonic() + max_wait
        with self._lost_raises_unavailable():
            while len(self.buffer) < max_messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.process_data_events(time_limit=min(remaining, 0.05))
        batch = []
        while self.buffer and len(batch) < max_messages:
            batch.append(self.buffer.popleft())
        return batch

    def ack(self, messages: Sequence[QueueMessage]) -> None:
        if not messages:
            return
        with self._lost_raises_unavailable("RabbitMQ connection lost before the ack"):
            # Everything up to the newest tag is done: batches are acked whole, in order.
            self.channel.basic_ack(max(m.tag for m in messages), multiple=True)

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        headers = {**message.headers, REASON_HEADER: reason}
        with self._lost_raises_unavailable():
            publish_persistent(self.channel, DEAD_EXCHANGE, message.body, headers)
        # Acked with its batch (ack() with `multiple`), after the dead letter is confirmed.

    def pause(self, seconds: float) -> None:
        if self.connection is None:
            time.sleep(seconds)
            return
        with self._lost_raises_unavailable():
            self.connection.sleep(seconds)  # keeps heartbeats going

    @contextmanager
    def _lost_raises_unavailable(self, what: str = "RabbitMQ connection lost") -> Iterator[None]:
        """A connection error inside: drop the connection (its unacked messages go back
        to RabbitMQ) and tell the caller the queue is unavailable."""
        try:
            yield
        except CONNECTION_ERRORS as error:
            self._drop()
            raise QueueUnavailable(f"{what}: {error!r}") from error

    def _drop(self) -> None:
        self.buffer.clear()  # unacked: RabbitMQ hands them out again
        if self.connection is not None:
            close_quietly(self.connection)
        self.connection = None
        self.channel = None

    def close(self) -> None:
        self._drop()
