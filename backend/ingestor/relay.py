"""Embedded broker with RabbitMQ: the broker plugin writes to the local queue (before its
PUBACK); this relay moves those messages on to RabbitMQ and deletes them from the
local queue only after RabbitMQ confirmed them."""

from __future__ import annotations

import logging
import threading

from fieldline_backend.infra.queue import TelemetryPublisher
from fieldline_backend.infra.queue.local import LocalQueue

log = logging.getLogger(__name__)


class LocalToQueueRelay:
    def __init__(self, local: LocalQueue, publisher: TelemetryPublisher, batch: int = 500):
        self.local = local
        self.publisher = publisher
        self.batch = batch
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ingestor-relay", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _run(self) -> None:
        while not self.stopping.is_set():
            messages = self.local.receive(self.batch, 0.2)
            if not messages:
                continue
            done = threading.Semaphore(0)
            for message in messages:
                self.publisher.publish(message.body, message.headers, done.release)
            confirmed = 0
            while confirmed < len(messages) and not self.stopping.is_set():
                if done.acquire(timeout=1):
                    confirmed += 1
                else:
                    self.local.pause(0)  # renew the lease while RabbitMQ is slow
            if confirmed == len(messages):
                self.local.ack(messages)
