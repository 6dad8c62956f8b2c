"""The RabbitMQ dead-letter box: list and replay `telemetry.dead`, each on a connection
of its own. Also the queue's probe (`depth`, `reachable`) for metrics and /readyz: it
holds no connection between calls, so a probe never ties one up."""

from __future__ import annotations

from fieldline_backend.infra.queue import (
    DEAD_QUEUE,
    EXCHANGE,
    REASON_HEADER,
    STORAGE_QUEUE,
    DeadLetter,
    counts_storage_queue,
)
from fieldline_backend.infra.queue.rabbitmq_connection import (
    close_quietly,
    connect,
    declare_topology,
    message_count,
    publish_persistent,
)


class RabbitDeadLetters:
    def __init__(self, url: str, quorum: bool = False, probe_timeout: float = 2.0):
        self.url = url
        self.quorum = quorum
        self.probe_timeout = probe_timeout  # bounds each wait of depth() and reachable()

    def _channel(self):
        connection = connect(self.url)
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
            close_quietly(connection)  # unacked -> back in the queue, in order
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
                publish_persistent(channel, EXCHANGE, body, headers)
                channel.basic_ack(method.delivery_tag)
                replayed += 1
        finally:
            close_quietly(connection)
        return replayed

    def depth(self, queue: str = STORAGE_QUEUE) -> int:
        """Messages waiting in `queue` (RabbitMQ's count of ready messages: those handed
        to a consumer and not yet acked are not in it)."""
        return message_count(self.url, queue, self.probe_timeout)

    def reachable(self) -> bool:
        """RabbitMQ answers an AMQP handshake and knows the storage queue."""
        return counts_storage_queue(self)

    def close(self) -> None:
        pass
