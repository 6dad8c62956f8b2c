"""The devices service: the device registry, desired configs, and their internal API."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from fieldline_backend.common.component import Component
from fieldline_backend.devices.api import build_router
from fieldline_backend.devices.bundle_repository import BundleRepository
from fieldline_backend.devices.bundle_server import BundleServer
from fieldline_backend.devices.bundles import DeviceBundles
from fieldline_backend.devices.command_repository import CommandRepository
from fieldline_backend.devices.commands import DeviceCommands
from fieldline_backend.devices.config_repository import ConfigRepository
from fieldline_backend.devices.configs import DeviceConfigs
from fieldline_backend.devices.mqtt_accounts import MqttAccountsClient
from fieldline_backend.devices.repository import DeviceRepository
from fieldline_backend.devices.rollout_repository import RolloutRepository
from fieldline_backend.devices.rollouts import DeviceRollouts
from fieldline_backend.devices.service import DeviceRegistry
from fieldline_backend.infra.broker.channel import DeviceChannel


@dataclass
class DevicesComponent(Component):
    ctx: object = None
    adapters: object = None
    registry: DeviceRegistry | None = field(default=None, repr=False)
    configs: DeviceConfigs | None = field(default=None, repr=False)
    commands: DeviceCommands | None = field(default=None, repr=False)
    bundles: DeviceBundles | None = field(default=None, repr=False)
    rollouts: DeviceRollouts | None = field(default=None, repr=False)
    bundle_server: BundleServer | None = field(default=None, repr=False)
    channel: DeviceChannel | None = field(default=None, repr=False)
    republish: asyncio.Task | None = field(default=None, repr=False)

    def get_registry(self) -> DeviceRegistry:
        if self.registry is None:
            raise RuntimeError("the devices service has not started")
        return self.registry

    def get_configs(self) -> DeviceConfigs:
        if self.configs is None:
            raise RuntimeError("the devices service has not started")
        return self.configs

    def get_commands(self) -> DeviceCommands:
        if self.commands is None:
            raise RuntimeError("the devices service has not started")
        return self.commands

    def get_bundles(self) -> DeviceBundles:
        if self.bundles is None:
            raise RuntimeError("the devices service has not started")
        return self.bundles

    def get_rollouts(self) -> DeviceRollouts:
        if self.rollouts is None:
            raise RuntimeError("the devices service has not started")
        return self.rollouts

    async def start(self) -> None:
        # Made here, not in build(): the HTTP client belongs to the running event loop.
        self.channel = self.adapters.open_device_channel()
        self.configs = DeviceConfigs(ConfigRepository(self.ctx.database), self.channel)
        self.commands = DeviceCommands(CommandRepository(self.ctx.database), self.channel)
        bundles = BundleRepository(self.ctx.database)
        rollouts = RolloutRepository(self.ctx.database)
        self.bundles = DeviceBundles(bundles)
        self.rollouts = DeviceRollouts(rollouts, bundles, self.channel)
        self.bundle_server = BundleServer(rollouts, bundles)
        self.rollouts.offers_changed = self.bundle_server.offer_changed
        self.bundle_server.start(self.adapters.open_device_listener)
        self.registry = DeviceRegistry(
            DeviceRepository(self.ctx.database),
            MqttAccountsClient(self.ctx.service_client("mqtt_auth")),
            self.ctx.settings.device_mqtt_endpoint(),
            (self.configs, self.commands, self.rollouts),
        )
        # In the background: the broker may come up after this service.
        self.republish = asyncio.create_task(self._publish_again())

    async def _publish_again(self) -> None:
        await self.configs.publish_all()
        await self.commands.publish_pending()
        await self.rollouts.publish_all()

    async def stop(self) -> None:
        if self.republish is not None:
            self.republish.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.republish
        if self.registry is not None:
            await self.registry.accounts.http.aclose()
            self.registry = None
        if self.bundle_server is not None:
            await self.bundle_server.stop()
        if self.channel is not None:
            await self.channel.close()
        self.configs = self.commands = self.channel = None
        self.bundles = self.rollouts = self.bundle_server = None


def build(ctx, adapters) -> Component:
    component = DevicesComponent(name="devices", ctx=ctx, adapters=adapters)
    component.routers.append(
        build_router(
            component.get_registry,
            component.get_configs,
            component.get_commands,
            component.get_bundles,
            component.get_rollouts,
        )
    )
    return component
