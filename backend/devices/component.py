"""The devices service: the device registry, desired configs, and their internal API."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from fieldline_backend.common.component import Component
from fieldline_backend.devices.api import build_router
from fieldline_backend.devices.config_repository import ConfigRepository
from fieldline_backend.devices.configs import DeviceConfigs
from fieldline_backend.devices.mqtt_accounts import MqttAccountsClient
from fieldline_backend.devices.repository import DeviceRepository
from fieldline_backend.devices.service import DeviceRegistry


@dataclass
class DevicesComponent(Component):
    ctx: object = None
    adapters: object = None
    registry: DeviceRegistry | None = field(default=None, repr=False)
    configs: DeviceConfigs | None = field(default=None, repr=False)
    republish: asyncio.Task | None = field(default=None, repr=False)

    def get_registry(self) -> DeviceRegistry:
        if self.registry is None:
            raise RuntimeError("the devices service has not started")
        return self.registry

    def get_configs(self) -> DeviceConfigs:
        if self.configs is None:
            raise RuntimeError("the devices service has not started")
        return self.configs

    async def start(self) -> None:
        # Made here, not in build(): the HTTP client belongs to the running event loop.
        self.configs = DeviceConfigs(
            ConfigRepository(self.ctx.database), self.adapters.open_device_channel()
        )
        self.registry = DeviceRegistry(
            DeviceRepository(self.ctx.database),
            MqttAccountsClient(self.ctx.service_client("mqtt_auth")),
            self.ctx.settings.device_mqtt_endpoint(),
            self.configs,
        )
        # In the background: the broker may come up after this service.
        self.republish = asyncio.create_task(self.configs.publish_all())

    async def stop(self) -> None:
        if self.republish is not None:
            self.republish.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.republish
        if self.registry is not None:
            await self.registry.accounts.http.aclose()
            self.registry = None
        if self.configs is not None:
            if self.configs.channel is not None:
                await self.configs.channel.close()
            self.configs = None


def build(ctx, adapters) -> Component:
    component = DevicesComponent(name="devices", ctx=ctx, adapters=adapters)
    component.routers.append(build_router(component.get_registry, component.get_configs))
    return component
