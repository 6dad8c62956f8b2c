"""The devices service: the device registry and its internal API."""

from __future__ import annotations

from dataclasses import dataclass, field

from fieldline_backend.common.component import Component
from fieldline_backend.devices.api import build_router
from fieldline_backend.devices.mqtt_accounts import MqttAccountsClient
from fieldline_backend.devices.repository import DeviceRepository
from fieldline_backend.devices.service import DeviceRegistry


@dataclass
class DevicesComponent(Component):
    ctx: object = None
    registry: DeviceRegistry | None = field(default=None, repr=False)

    def get_registry(self) -> DeviceRegistry:
        if self.registry is None:
            raise RuntimeError("the devices service has not started")
        return self.registry

    async def start(self) -> None:
        # Made here, not in build(): the HTTP client belongs to the running event loop.
        self.registry = DeviceRegistry(
            DeviceRepository(self.ctx.database),
            MqttAccountsClient(self.ctx.service_client("mqtt_auth")),
            self.ctx.settings.device_mqtt_endpoint(),
        )

    async def stop(self) -> None:
        if self.registry is not None:
            await self.registry.accounts.http.aclose()
            self.registry = None


def build(ctx, adapters) -> Component:  # devices uses no adapter of its own
    component = DevicesComponent(name="devices", ctx=ctx)
    component.routers.append(build_router(component.get_registry))
    return component
