"""The gateway: every public route under /api/v1.

Each module in fieldline_backend.gateway.routes exports `router`; all of them are
included, so a new resource is a new module there and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from fastapi import APIRouter

from fieldline_backend.common.component import Component
from fieldline_backend.gateway import routes
from fieldline_backend.gateway.auth import accounts_for


def route_modules() -> list[str]:
    return sorted(
        f"{routes.__name__}.{info.name}"
        for info in pkgutil.iter_modules(routes.__path__)
        if not info.name.startswith("_")
    )


def public_routers() -> list[APIRouter]:
    found = []
    for name in route_modules():
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{name} must export `router = APIRouter(...)`")
        found.append(router)
    return found


@dataclass
class GatewayComponent(Component):
    ctx: object = None

    async def stop(self) -> None:
        from fieldline_backend.devices.client import close_devices_client

        await close_devices_client(self.ctx)


def build(ctx, adapters) -> Component:  # the gateway uses no adapter of its own
    from fieldline_backend.console.routes import console_routers  # the web console at /

    accounts_for(ctx)
    routers = public_routers() + console_routers()
    return GatewayComponent(name="gateway", routers=routers, ctx=ctx)
