"""The RabbitMQ publisher: a SelectConnection on a thread of its own with publisher
confirms, many messages in flight (a window, not one round trip each). A confirm, also
a `multiple` one, runs each message's callback; a nack or a lost connection publishes
the unconfirmed messages again (the store's key makes a repeat harmless)."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.select_connection import IOLoop
from pika.spec import Basic

from fieldline_backend.infra.queue import EXCHANGE, QueueUnavailable
from fieldline_backend.infra.queue.rabbitmq_connection import (
    ensure_topology,
    parameters,
    publish_persistent,
    where,
)

log = logging.getLogger(__name__)


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
        log.info("publishing telemetry to RabbitMQ at %s", where(self.url))
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
            publish_persistent(channel, EXCHANGE, message.body, message.headers)

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
