"""The queue port between the ingestor and storage: RabbitMQ or a durable local queue.

Contract (design brief): exchange `telemetry`, durable queue `telemetry.storage`,
dead-letter queue `telemetry.dead` with the reason in a header; a message is the MQTT
payload bytes with headers `client_id`, `topic` and `received_at` (ms since epoch,
stamped once by the ingestor). Both adapters keep a message until it is acknowledged,
hand it out again after a crash, and keep dead letters until they are replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

EXCHANGE = "telemetry"
STORAGE_QUEUE = "telemetry.storage"
DEAD_EXCHANGE = "telemetry.dead"
DEAD_QUEUE = "telemetry.dead"
REASON_HEADER = "reason"


class QueueUnavailable(Exception):
    """The queue cannot be reached; the caller keeps what it holds and retries."""


@dataclass
class QueueMessage:
    body: bytes
    headers: dict[str, Any]
    tag: Any = None  # the adapter's handle for ack / dead_letter


@dataclass
class DeadLetter:
    id: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return str(self.headers.get(REASON_HEADER, ""))


class TelemetryPublisher(Protocol):
    def publish(
        self, body: bytes, headers: dict[str, Any], on_confirmed: Callable[[], None]
    ) -> None:
        """Hand a message over; `on_confirmed` runs (on any thread) once it is durable.
        May block while too many messages wait for their confirm (back pressure)."""

    def close(self) -> None: ...


class TelemetryConsumer(Protocol):
    def receive(self, max_messages: int, max_wait: float) -> list[QueueMessage]:
        """Up to max_messages, waiting at most max_wait seconds for the first ones."""

    def ack(self, messages: Sequence[QueueMessage]) -> None: ...

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Move one received message to the dead letters with its reason (acks it)."""

    def pause(self, seconds: float) -> None:
        """Wait, keeping the connection and the held messages alive."""

    def close(self) -> None: ...


class DeadLetterBox(Protocol):
    def list(self, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, limit: int | None = None) -> int:
        """Send dead letters back to the storage queue; returns how many."""

    def close(self) -> None: ...


class QueueAdmin(Protocol):
    """What metrics and /readyz ask the queue; each call opens and closes its own
    connection, within a couple of seconds."""

    def depths(self) -> dict[str, int]:
        """Messages waiting per queue ({STORAGE_QUEUE: n, DEAD_QUEUE: m}); raises when
        the queue cannot be reached."""


def local_queue_path(settings) -> Any:
    return settings.data_dir / "queue.db"


def open_publisher(settings, max_in_flight: int | None = None) -> TelemetryPublisher:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitPublisher

        extra = {} if max_in_flight is None else {"max_in_flight": max_in_flight}
        return RabbitPublisher(settings.amqp_url, quorum=settings.amqp_quorum, **extra)
    from fieldline_backend.infra.queue.local import LocalQueue

    return LocalQueue(local_queue_path(settings))


def open_consumer(settings, prefetch: int) -> TelemetryConsumer:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitConsumer

        return RabbitConsumer(settings.amqp_url, prefetch=prefetch, quorum=settings.amqp_quorum)
    from fieldline_backend.infra.queue.local import LocalQueue

    return LocalQueue(local_queue_path(settings))


def open_dead_letters(settings) -> DeadLetterBox:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitDeadLetters

        return RabbitDeadLetters(settings.amqp_url, quorum=settings.amqp_quorum)
    from fieldline_backend.infra.queue.local import LocalQueue

    return LocalQueue(local_queue_path(settings))


def open_queue_admin(settings) -> QueueAdmin:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbit_admin import RabbitQueueAdmin

        return RabbitQueueAdmin(settings.amqp_url)
    from fieldline_backend.infra.queue.local import LocalQueueAdmin

    return LocalQueueAdmin(local_queue_path(settings))
