"""mqtt_auth in a process: its internal routes, and on start the broker brought in
step with the database (then again every RESYNC_SECONDS, to heal any drift)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fieldline_backend.common.component import Component
from fieldline_backend.common.context import Context
from fieldline_backend.infra.adapters import Adapters
from fieldline_backend.infra.broker import backend_account
from fieldline_backend.mqtt_auth.api import build_router
from fieldline_backend.mqtt_auth.repository import AccountRepository
from fieldline_backend.mqtt_auth.service import MqttAccounts

log = logging.getLogger(__name__)

RESYNC_SECONDS = 60.0


@dataclass
class MqttAuthComponent(Component):
    accounts: MqttAccounts | None = None
    _resync: asyncio.Task | None = None

    async def start(self) -> None:
        assert self.accounts is not None
        await self.accounts.sync_broker(
            changed=False
        )  # a fresh broker admits exactly the enabled devices
        self._resync = asyncio.create_task(self._resync_forever(), name="mqtt_auth-resync")

    async def _resync_forever(self) -> None:
        assert self.accounts is not None
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            try:
                await self.accounts.sync_broker(changed=False)
            except Exception:
                log.exception("periodic broker resync failed; retrying in %s s", RESYNC_SECONDS)

    async def ready(self) -> dict[str, bool]:
        assert self.accounts is not None
        return {"broker": await self.accounts.broker.reachable()}

    async def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync
        if self.accounts is not None:
            await self.accounts.broker.close()


def storage_cache_invalidator(ctx: Context) -> Callable[[str], Awaitable[None]] | None:
    """Drops a device from storage's enrichment cache, wherever storage runs (None when
    storage runs neither here nor at a configured FIELDLINE_STORAGE_URL)."""
    if "storage" not in ctx.services and not ctx.settings.storage_url:
        return None

    async def invalidate(client_id: str) -> None:
        async with ctx.service_client("storage", timeout=2.0) as client:
            response = await client.post(
                "/internal/telemetry/device-cache/invalidate", json={"client_id": client_id}
            )
            response.raise_for_status()

    return invalidate


def build(ctx: Context, adapters: Adapters) -> Component:
    accounts = MqttAccounts(
        repository=AccountRepository(ctx.database),
        broker=adapters.broker,  # the embedded one is started by app before us
        backend=backend_account(ctx.settings),
        on_device_changed=storage_cache_invalidator(ctx),
    )
    ctx.extras["mqtt_accounts"] = accounts
    component = MqttAuthComponent(name="mqtt_auth", accounts=accounts)
    component.routers.append(build_router(lambda: accounts))
    return component
