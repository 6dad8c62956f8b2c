"""The QueueAdmin port on RabbitMQ: queue depths by passive declare, on a short-lived
connection with short timeouts (a scrape or a probe must not hang)."""

from __future__ import annotations

import pika

from fieldline_backend.infra.queue import DEAD_QUEUE, STORAGE_QUEUE
from fieldline_backend.infra.queue.rabbitmq import parameters


class RabbitQueueAdmin:
    def __init__(self, url: str, timeout: float = 2.0):
        self.url = url
        self.timeout = timeout

    def depths(self) -> dict[str, int]:
        params = parameters(self.url)
        params.socket_timeout = self.timeout
        params.blocked_connection_timeout = self.timeout
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            return {
                queue: channel.queue_declare(queue, passive=True).method.message_count
                for queue in (STORAGE_QUEUE, DEAD_QUEUE)
            }
        finally:
            connection.close()
