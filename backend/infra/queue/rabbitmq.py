"""The queue port on RabbitMQ through pika: one module per part, named here so callers
import them from one place.

- rabbitmq_publisher: `RabbitPublisher`, confirms on a thread of its own.
- rabbitmq_consumer: `RabbitConsumer`, prefetch window, batch acks, dead-lettering.
- rabbitmq_dead_letters: `RabbitDeadLetters`, list/replay and the probe (depth, reachable).
- rabbitmq_connection: what they share (parameters, topology, persistent publish, errors).
"""

from fieldline_backend.infra.queue.rabbitmq_connection import (
    CONNECTION_ERRORS,
    PERSISTENT,
    declare_topology,
    ensure_topology,
    parameters,
)
from fieldline_backend.infra.queue.rabbitmq_consumer import RabbitConsumer
from fieldline_backend.infra.queue.rabbitmq_dead_letters import RabbitDeadLetters
from fieldline_backend.infra.queue.rabbitmq_publisher import RabbitPublisher

__all__ = [
    "CONNECTION_ERRORS",
    "PERSISTENT",
    "RabbitConsumer",
    "RabbitDeadLetters",
    "RabbitPublisher",
    "declare_topology",
    "ensure_topology",
    "parameters",
]
