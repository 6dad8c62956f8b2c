"""storage: consumes the telemetry queue into the time-series store; answers reads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from fieldline_backend.common.component import Component
from fieldline_backend.infra.adapters import Adapters
from fieldline_backend.infra.timeseries import TimeSeriesStore, TimeSeriesUnavailable
from fieldline_backend.storage.api import router
from fieldline_backend.storage.device_reports import DeviceReports
from fieldline_backend.storage.devices import DeviceDirectory
from fieldline_backend.storage.service import StorageService
from fieldline_backend.storage.worker import StorageWorker, WorkerStats

log = logging.getLogger(__name__)


@dataclass
class Storage:
    """What the API and the worker share in this process (ctx.extras["storage"])."""

    store: TimeSeriesStore
    directory: DeviceDirectory
    service: StorageService
    stats: WorkerStats = field(default_factory=WorkerStats)
    workers: list[StorageWorker] = field(default_factory=list)


class StorageComponent(Component):
    def __init__(self, ctx, adapters: Adapters):
        super().__init__(name="storage", routers=[router])
        self.ctx = ctx
        self.adapters = adapters
        self.storage: Storage | None = None

    def _build(self) -> Storage:
        settings = self.ctx.settings
        store = self.adapters.open_timeseries()
        directory = DeviceDirectory(
            lambda: self.ctx.sync_service_client("mqtt_auth"),
            ttl=settings.storage_device_cache_seconds,
        )
        window_ms = int(settings.storage_redelivery_window_seconds * 1000)
        reports = DeviceReports(lambda: self.ctx.sync_service_client("devices"))
        return Storage(store, directory, StorageService(directory, store, window_ms, reports))

    async def start(self) -> None:
        settings = self.ctx.settings
        self.storage = storage = self._build()
        self.ctx.extras["storage"] = storage
        try:
            await asyncio.to_thread(storage.store.ensure_schema)
        except TimeSeriesUnavailable as error:
            # The worker holds messages until the store answers; do not refuse to start.
            log.warning("time-series store not ready at start: %s", error)
        worker = StorageWorker(
            lambda: self.adapters.open_consumer(prefetch=settings.storage_prefetch),
            storage.service,
            batch_size=settings.storage_batch_size,
            batch_seconds=settings.storage_batch_seconds,
            stats=storage.stats,
        )
        storage.workers.append(worker)
        worker.start()

    async def stop(self) -> None:
        if self.storage is None:
            return
        for worker in self.storage.workers:
            await asyncio.to_thread(worker.stop)
        self.storage.directory.close()
        if self.storage.service.reports is not None:
            self.storage.service.reports.close()
        self.storage.store.close()

    async def ready(self) -> dict[str, bool]:
        storage = self.storage
        return {"worker": bool(storage and all(w.thread.is_alive() for w in storage.workers))}


def build(ctx, adapters: Adapters) -> Component:
    return StorageComponent(ctx, adapters)
