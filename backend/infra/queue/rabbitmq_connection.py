"""What the RabbitMQ publisher, consumer and dead-letter box share: connection
parameters, the topology, a persistent publish, and the errors they turn into
`QueueUnavailable`. Written once here so the three cannot drift apart."""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from fieldline_backend.infra.queue import (
    DEAD_EXCHANGE,
    DEAD_QUEUE,
    EXCHANGE,
    QUEUES,
    STORAGE_QUEUE,
    QueueUnavailable,
)

PERSISTENT = 2
CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError)
# A server that accepts TCP and never speaks ends in pika's stack timeout, which is none
# of the above: a probe must still answer "unavailable", not raise.
PROBE_ERRORS = (*CONNECTION_ERRORS, AMQPConnectorException)


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


def unreachable(url: str, error: BaseException) -> QueueUnavailable:
    return QueueUnavailable(f"RabbitMQ unreachable at {where(url)}: {error!r}")


def connect(url: str) -> pika.BlockingConnection:
    """A blocking connection, or QueueUnavailable saying where RabbitMQ was not found."""
    try:
        return pika.BlockingConnection(parameters(url))
    except CONNECTION_ERRORS as error:
        raise unreachable(url, error) from error


def ensure_topology(url: str, quorum: bool = False) -> None:
    connection = connect(url)
    try:
        declare_topology(connection.channel(), quorum)
    finally:
        close_quietly(connection)


def publish_persistent(channel, exchange: str, body: bytes, headers: dict[str, Any]) -> None:
    channel.basic_publish(
        exchange, "", body, pika.BasicProperties(delivery_mode=PERSISTENT, headers=headers)
    )


def message_count(url: str, queue: str, timeout: float) -> int:
    """Messages ready in `queue` (not those delivered and unacked), asked on a short-lived
    connection whose every wait is bounded by `timeout`. The queue must exist already
    (a passive declare): a probe never creates the topology."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; expected one of {QUEUES}")
    params = parameters(url)
    params.socket_timeout = timeout
    params.stack_timeout = timeout  # the whole handshake, not only each socket wait
    params.blocked_connection_timeout = timeout
    try:
        connection = pika.BlockingConnection(params)
    except PROBE_ERRORS as error:
        raise unreachable(url, error) from error
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except PROBE_ERRORS as error:
        raise unreachable(url, error) from error
    finally:
        close_quietly(connection)


def close_quietly(connection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # closing a dead connection: nothing more to do
        pass


def where(url: str) -> str:
    """The host part of the URL, for messages: never the password."""
    return url.rsplit("@", 1)[-1]
