"""ingestor: MQTT broker -> queue, acknowledging MQTT only after the queue confirmed.

With Mosquitto (FIELDLINE_MQTT_URL) a paho client per replica takes the shared
subscription. On the embedded broker a plugin inside amqtt takes telemetry before the
PUBACK (ingestor/embedded.py) and a plain paho subscriber follows device status.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from fieldline_backend.common.component import Component
from fieldline_backend.infra.adapters import Adapters
from fieldline_backend.infra.broker import backend_credentials
from fieldline_backend.infra.queue import local_queue_path
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.ingestor.api import router
from fieldline_backend.ingestor.forwarder import STATUS, Forwarder
from fieldline_backend.ingestor.relay import LocalToQueueRelay

log = logging.getLogger(__name__)


def ingestor_client_id(settings) -> str:
    return settings.ingestor_client_id or f"fieldline-ingestor-{socket.gethostname()}"


class IngestorComponent(Component):
    def __init__(self, ctx, adapters: Adapters):
        super().__init__(name="ingestor", routers=[router])
        self.ctx = ctx
        self.adapters = adapters  # on the embedded broker, app added our capture plugin
        ctx.extras["ingestor"] = self
        self.publisher = None
        self.forwarder: Forwarder | None = None
        self.relay: LocalToQueueRelay | None = None

    async def start(self) -> None:
        settings = self.ctx.settings
        self.publisher = self.adapters.open_publisher()
        host, port = settings.broker_address
        username, password = backend_credentials(settings)
        if settings.embedded_broker:
            if settings.amqp_url:
                self.relay = LocalToQueueRelay(
                    LocalQueue(local_queue_path(settings)), self.publisher
                )
                self.relay.start()
            client_id = ingestor_client_id(settings) + "-status"
            topics, shared = (STATUS,), False  # amqtt delivers nothing to $share
        else:
            client_id = ingestor_client_id(settings)
            topics, shared = None, True
        kwargs = {"topics": topics} if topics else {}
        self.forwarder = Forwarder(
            host, port, client_id, self.publisher, username, password, shared=shared, **kwargs
        )
        self.forwarder.start()

    async def stop(self) -> None:
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.stop)
        if self.relay is not None:
            await asyncio.to_thread(self.relay.stop)
        if self.publisher is not None:
            await asyncio.to_thread(self.publisher.close)

    async def ready(self) -> dict[str, bool]:
        return {"broker": bool(self.forwarder and self.forwarder.connected.is_set())}


def build(ctx, adapters: Adapters) -> Component:
    return IngestorComponent(ctx, adapters)
