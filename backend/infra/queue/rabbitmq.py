"""The queue port on RabbitMQ through pika.

Publisher: a SelectConnection on a thread of its own with publisher confirms, many
messages in flight (a window, not one round trip each); a confirm, also a `multiple`
one, runs each message's callback; a nack or a lost connection publishes the
unconfirmed messages again (the store's key makes a repeat harmless).
Consumer: a BlockingConnection with a prefetch window; batches are acked with
`multiple`; a dead letter is published (confirmed) to `telemetry.dead` with its reason
before the original is acked.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import IOLoop
from pika.spec import Basic

from fieldline_backend.infra.queue import (
    DEAD_EXCHANGE,
    DEAD_QUEUE,
    EXCHANGE,
    REASON_HEADER,
    STORAGE_QUEUE,
    DeadLetter,
    QueueMessage,
    QueueUnavailable,
)

log = logging.getLogger(__name__)

PERSISTENT = 2
CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError)


def parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 10
    return params


def declare_topology(channel, quorum: bool = False) -> None:
    """Exchange, storage queue and dead letters, all durable (idempotent)."""
    arguments = {"x-queue-type": "quorum"} if quorum else None
    channel.exchange_declare(EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(STORAGE_QUEUE, durable=True, arguments=arguments)
    channel.queue_bind(STORAGE_QUEUE, EXCHANGE)
    channel.exchange_declare(DEAD_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_QUEUE, durable=True, arguments=arguments)
    channel.queue_bind(DEAD_QUEUE, DEAD_EXCHANGE)


def ensure_topology(url: str, quorum: bool = False) -> None:
    try:
        connection = pika.BlockingConnection(parameters(url))
    except CONNECTION_ERRORS as error:
        raise QueueUnavailable(f"RabbitMQ unreachable at {_where(url)}: {error!r}") from error
    try:
        declare_topology(connection.channel(), quorum)
    finally:
        _close_quietly(connection)


# ---- publisher ----------------------------------------------------------------------


@dataclass
class _Outgoing:
    body: bytes
    headers: dict[str, Any]
    on_confirmed: Callable[[], None]


class RabbitPublisher:
    def __init__(self, url: str, quorum: bool = False, max_in_flight: int = 5000):
        self.url = url
        self.quorum = quorum
        self.slots = threading.BoundedSemaphore(max_in_flight)
        self.ioloop = IOLoop()
        self.backlog: collections.deque[_Outgoing] = collections.deque()
        self.backlog_lock = threading.Lock()
        self.pending: dict[int, _Outgoing] = {}
        self.next_tag = 1
        self.connection: pika.SelectConnection | None = None
        self.channel = None
        self.ready = threading.Event()
        self.closing = False
        self.confirmed = 0
        self.thread = threading.Thread(target=self._run, name="amqp-publisher", daemon=True)
        self.thread.start()
        self.ioloop.add_callback_threadsafe(self._connect)

    def publish(
        self, body: bytes, headers: dict[str, Any], on_confirmed: Callable[[], None]
    ) -> None:
        self.slots.acquire()  # back pressure: at most max_in_flight unconfirmed
        with self.backlog_lock:
            idle = not self.backlog
            self.backlog.append(_Outgoing(body, headers, on_confirmed))
        if idle:  # a flush is already due otherwise: one wake-up per burst, not per message
            self.ioloop.add_callback_threadsafe(self._flush)

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout)

    # -- everything below runs on the publisher thread --

    def _run(self) -> None:
        self.ioloop.start()

    def _connect(self) -> None:
        if self.closing:
            return
        try:
            ensure_topology(self.url, self.quorum)
        except QueueUnavailable as error:
            log.warning("%s; retrying in 2 s", error)
            self.ioloop.call_later(2, self._connect)
            return
        self.connection = pika.SelectConnection(
            parameters(self.url),
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
            custom_ioloop=self.ioloop,
        )

    def _on_open_error(self, _connection, error) -> None:
        log.warning("RabbitMQ connection failed (%r); retrying in 2 s", error)
        self.ioloop.call_later(2, self._connect)

    def _on_open(self, connection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame) -> None:
        self.next_tag = 1
        self.ready.set()
        log.info("publishing telemetry to RabbitMQ at %s", _where(self.url))
        self._flush()

    def _on_channel_closed(self, _channel, reason) -> None:
        log.warning("RabbitMQ channel closed: %r", reason)
        self._requeue_pending()
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def _on_closed(self, _connection, reason) -> None:
        self.ready.clear()
        self.channel = None
        self.connection = None
        self._requeue_pending()
        if self.closing:
            self.ioloop.stop()
            return
        log.warning("RabbitMQ connection lost (%r); reconnecting in 1 s", reason)
        self.ioloop.call_later(1, self._connect)

    def _requeue_pending(self) -> None:
        """Unconfirmed messages go out again, first and in their order."""
        if not self.pending:
            return
        unconfirmed = [self.pending[tag] for tag in sorted(self.pending)]
        self.pending.clear()
        with self.backlog_lock:
            self.backlog.extendleft(reversed(unconfirmed))

    def _flush(self) -> None:
        channel = self.channel
        if channel is None or not self.ready.is_set() or not channel.is_open:
            return
        while True:
            with self.backlog_lock:
                if not self.backlog:
                    return
                message = self.backlog.popleft()
            tag = self.next_tag
            self.next_tag += 1
            self.pending[tag] = message
            channel.basic_publish(
                EXCHANGE,
                "",
                message.body,
                pika.BasicProperties(delivery_mode=PERSISTENT, headers=message.headers),
            )

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if method.multiple:
            tags = []
            for tag in self.pending:  # insertion order is tag order
                if tag > method.delivery_tag:
                    break
                tags.append(tag)
        else:
            tags = [method.delivery_tag]
        done = [self.pending.pop(t) for t in tags if t in self.pending]
        if isinstance(method, Basic.Nack):
            log.warning("RabbitMQ refused %d message(s); publishing them again", len(done))
            with self.backlog_lock:
                self.backlog.extendleft(reversed(done))
            self.ioloop.call_later(0.5, self._flush)
            return
        for message in done:
            self.confirmed += 1
            self.slots.release()
            try:
                message.on_confirmed()
            except Exception:
                log.exception("confirm callback failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop; unconfirmed messages are dropped here (their MQTT acks never went out,
        so the broker delivers them again)."""

        def shutdown() -> None:
            self.closing = True
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
            else:
                self.ioloop.stop()

        self.ioloop.add_callback_threadsafe(shutdown)
        self.thread.join(timeout)


# ---- consumer -----------------------------------------------------------------------


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
            raise QueueUnavailable(
                f"RabbitMQ unreachable at {_where(self.url)}: {error!r}"
            ) from error
        self.channel = channel
        return channel

    def _on_message(self, _channel, method, properties, body) -> None:
        headers = dict(properties.headers or {})
        self.buffer.append(QueueMessage(body, headers, method.delivery_tag))

    def receive(self, max_messages: int, max_wait: float) -> list[QueueMessage]:
        self._ensure()
        deadline = time.monotonic() + max_wait
        try:
            while len(self.buffer) < max_messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.process_data_events(time_limit=min(remaining, 0.05))
        except CONNECTION_ERRORS as error:
            self._drop()
            raise QueueUnavailable(f"RabbitMQ connection lost: {error!r}") from error
        batch = []
        while self.buffer and len(batch) < max_messages:
            batch.append(self.buffer.popleft())
        return batch

    def ack(self, messages: Sequence[QueueMessage]) -> None:
        if not messages:
            return
        try:
            # Everything up to the newest tag is done: batches are acked whole, in order.
            self.channel.basic_ack(max(m.tag for m in messages), multiple=True)
        except CONNECTION_ERRORS as error:
            self._drop()
            raise QueueUnavailable(f"RabbitMQ connection lost before the ack: {error!r}") from error

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        headers = {**message.headers, REASON_HEADER: reason}
        try:
            self.channel.basic_publish(
                DEAD_EXCHANGE,
                "",
                message.body,
                pika.BasicProperties(delivery_mode=PERSISTENT, headers=headers),
            )
        except CONNECTION_ERRORS as error:
            self._drop()
            raise QueueUnavailable(f"RabbitMQ connection lost: {error!r}") from error
        # Acked with its batch (ack() with `multiple`), after the dead letter is confirmed.

    def pause(self, seconds: float) -> None:
        if self.connection is None:
            time.sleep(seconds)
            return
        try:
            self.connection.sleep(seconds)  # keeps heartbeats going
        except CONNECTION_ERRORS as error:
            self._drop()
            raise QueueUnavailable(f"RabbitMQ connection lost: {error!r}") from error

    def _drop(self) -> None:
        self.buffer.clear()  # unacked: RabbitMQ hands them out again
        if self.connection is not None:
            _close_quietly(self.connection)
        self.connection = None
        self.channel = None

    def close(self) -> None:
        self._drop()


# ---- dead letters -------------------------------------------------------------------


class RabbitDeadLetters:
    def __init__(self, url: str, quorum: bool = False):
        self.url = url
        self.quorum = quorum

    def _channel(self):
        try:
            connection = pika.BlockingConnection(parameters(self.url))
        except CONNECTION_ERRORS as error:
            raise QueueUnavailable(
                f"RabbitMQ unreachable at {_where(self.url)}: {error!r}"
            ) from error
        channel = connection.channel()
        declare_topology(channel, self.quorum)
        return connection, channel

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """Look without taking: the messages are fetched unacked and given back."""
        connection, channel = self._channel()
        letters = []
        try:
            while len(letters) < limit:
                method, properties, body = channel.basic_get(DEAD_QUEUE, auto_ack=False)
                if method is None:
                    break
                headers = dict(properties.headers or {})
                letters.append(DeadLetter(str(len(letters) + 1), body, headers))
        finally:
            _close_quietly(connection)  # unacked -> back in the queue, in order
        return letters

    def replay(self, limit: int | None = None) -> int:
        connection, channel = self._channel()
        channel.confirm_delivery()
        replayed = 0
        try:
            while limit is None or replayed < limit:
                method, properties, body = channel.basic_get(DEAD_QUEUE, auto_ack=False)
                if method is None:
                    break
                headers = {
                    k: v for k, v in (properties.headers or {}).items() if k != REASON_HEADER
                }
                channel.basic_publish(
                    EXCHANGE,
                    "",
                    body,
                    pika.BasicProperties(delivery_mode=PERSISTENT, headers=headers),
                )
                channel.basic_ack(method.delivery_tag)
                replayed += 1
        finally:
            _close_quietly(connection)
        return replayed

    def close(self) -> None:
        pass


def _close_quietly(connection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # closing a dead connection: nothing more to do
        pass


def _where(url: str) -> str:
    return url.rsplit("@", 1)[-1]
