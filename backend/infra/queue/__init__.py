"""The queue port between the ingestor and storage: RabbitMQ or a durable local queue.

Contract (design brief): exchange `telemetry`, durable queue `telemetry.storage`,
dead-letter queue `telemetry.dead` with the reason in a header; a message is the MQTT
payload bytes with headers `client_id`, `topic` and `received_at` (ms since epoch,
stamped once by the ingestor). Both adapters keep a message until it is acknowledged,
hand it out again after a crash, and keep dead letters until they are replayed.

Adapters: `local.LocalQueue` (all three roles on one SQLite file) and, through
`rabbitmq`, `RabbitPublisher`, `RabbitConsumer` and `RabbitDeadLetters`. One contract
suite runs on both: tests/pipeline/test_queue_contract.py.
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
QUEUES = (STORAGE_QUEUE, DEAD_QUEUE)  # the ones a probe reports on


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


class QueueProbe(Protocol):
    """What metrics and /readyz ask of the queue, without consuming anything."""

    def depth(self, queue: str = STORAGE_QUEUE) -> int:
        """Messages waiting in `queue` (STORAGE_QUEUE or DEAD_QUEUE); raises
        QueueUnavailable when the queue cannot be reached."""

    def reachable(self) -> bool:
        """Whether the queue answers now (never raises; bounded by a short timeout)."""


def counts_storage_queue(probe: QueueProbe) -> bool:
    """reachable() of both adapters: the queue answers when it can count its storage
    queue (written once so the two cannot mean different things)."""
    try:
        probe.depth(STORAGE_QUEUE)
    except QueueUnavailable:
        return False
    return True


class DeadLetterBox(QueueProbe, Protocol):
    def list(self, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, limit: int | None = None) -> int:
        """Send dead letters back to the storage queue; returns how many."""

    def close(self) -> None: ...


def local_queue_path(settings) -> Any:
    return settings.data_dir / "queue.db"


def _local_queue(settings):
    """Without FIELDLINE_AMQP_URL every role is the local queue in the data dir."""
    from fieldline_backend.infra.queue.local import LocalQueue

    return LocalQueue(local_queue_path(settings))


def open_publisher(settings) -> TelemetryPublisher:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitPublisher

        return RabbitPublisher(
            settings.amqp_url,
            quorum=settings.amqp_quorum,
            max_in_flight=settings.ingestor_max_in_flight,
        )
    return _local_queue(settings)


def open_consumer(settings, prefetch: int) -> TelemetryConsumer:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitConsumer

        return RabbitConsumer(settings.amqp_url, prefetch=prefetch, quorum=settings.amqp_quorum)
    return _local_queue(settings)


def open_probe(settings) -> QueueProbe:
    """What /metrics and /readyz ask (depth, reachable), each call bounded by
    FIELDLINE_QUEUE_PROBE_TIMEOUT. RabbitMQ's dead-letter box holds no connection between
    calls, so it doubles as the probe; the local queue's probe waits on the file's lock
    no longer than that timeout."""
    if settings.amqp_url:
        return open_dead_letters(settings)
    from fieldline_backend.infra.queue.local import LocalQueue

    return LocalQueue(local_queue_path(settings), busy_timeout=settings.queue_probe_timeout)


def open_dead_letters(settings) -> DeadLetterBox:
    if settings.amqp_url:
        from fieldline_backend.infra.queue.rabbitmq import RabbitDeadLetters

        return RabbitDeadLetters(
            settings.amqp_url,
            quorum=settings.amqp_quorum,
            probe_timeout=settings.queue_probe_timeout,
        )
    return _local_queue(settings)
