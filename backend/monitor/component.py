"""The monitor in a process: its schedule (FIELDLINE_MONITOR_INTERVAL), the time-series
store it reads and the alerts service it posts to, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import cached_property

from fieldline_backend.common.component import Component
from fieldline_backend.infra.adapters import Adapters
from fieldline_backend.infra.timeseries import TimeSeriesStore
from fieldline_backend.monitor.api import EXTRAS_KEY, router
from fieldline_backend.monitor.devices import WatchedDevice, select_devices
from fieldline_backend.monitor.runner import Monitor

log = logging.getLogger(__name__)


class AlertsUnavailable(RuntimeError):
    pass


@dataclass
class MonitorComponent(Component):
    ctx: object = None
    adapters: Adapters | None = None
    monitor: Monitor | None = None
    _task: asyncio.Task | None = None
    _clients: list = field(default_factory=list)

    @cached_property
    def store(self) -> TimeSeriesStore:
        assert self.adapters is not None
        store = self.adapters.open_timeseries()
        store.ensure_schema()
        return store

    @cached_property
    def alerts(self):
        client = self.ctx.service_client("alerts", timeout=30)
        self._clients.append(client)
        return client

    async def fetch_rules(self) -> list[dict]:
        response = await self.alerts.get("/internal/alert-rules", params={"enabled": "true"})
        if response.status_code != 200:
            raise AlertsUnavailable(f"alerts answered {response.status_code} for the rules")
        return response.json()

    async def fetch_told(self) -> dict[tuple[str, str], str]:
        response = await self.alerts.get("/internal/alert-states/standing")
        if response.status_code != 200:
            raise AlertsUnavailable(f"alerts answered {response.status_code} for the states")
        return {(s["rule_id"], s["device"]): s["level"] for s in response.json()}

    async def fetch_devices(self, owner_id: str) -> list[WatchedDevice]:
        from fieldline_backend.devices.client import devices_client_for

        owned = await devices_client_for(self.ctx).list(int(owner_id))
        return [
            WatchedDevice(id=d.id, name=d.name, metadata=dict(d.metadata or {}))
            for d in owned
            if getattr(d, "enabled", True)
        ]

    async def devices_of(self, owner_id: str, rule: dict) -> list[WatchedDevice]:
        return select_devices(rule, await self.fetch_devices(owner_id))

    async def post(self, payloads: list[dict]) -> None:
        response = await self.alerts.post("/internal/notifications/influxdb", json=payloads)
        if response.status_code >= 300:
            raise AlertsUnavailable(
                f"alerts answered {response.status_code}: {response.text[:200]}"
            )

    async def start(self) -> None:
        settings = self.ctx.settings
        await asyncio.to_thread(lambda: self.store)
        self.monitor = Monitor(
            self.store,
            self.fetch_rules,
            self.fetch_devices,
            self.post,
            interval_s=settings.monitor_interval,
            late_after_s=settings.monitor_late_after,
            max_backlog_s=settings.monitor_max_backlog,
            fetch_told=self.fetch_told,
        )
        self._task = asyncio.create_task(self._run(), name="monitor")

    async def _run(self) -> None:
        # Let the other services of this process finish starting before the first cycle.
        await asyncio.sleep(min(self.ctx.settings.monitor_interval, 1.0))
        await self.monitor.run_forever()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in self._clients:
            await client.aclose()
        if "store" in self.__dict__:
            self.store.close()


def build(ctx, adapters: Adapters) -> Component:
    component = MonitorComponent(name="monitor", routers=[router], ctx=ctx, adapters=adapters)
    ctx.extras[EXTRAS_KEY] = component
    return component
