"""devices' internal HTTP API (docs/architecture.md, "devices service"). The owner is
explicit in every call; the gateway maps public requests onto these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.devices.api_errors import mqtt_auth_failed, registry_answers
from fieldline_backend.devices.bundles import DeviceBundles
from fieldline_backend.devices.commands import DeviceCommands
from fieldline_backend.devices.configs import DeviceConfigs
from fieldline_backend.devices.fleet_api import command_router, config_router
from fieldline_backend.devices.mqtt_accounts import MqttAuthFailed
from fieldline_backend.devices.ota_api import bundle_router, device_update_router, rollout_router
from fieldline_backend.devices.rollouts import DeviceRollouts
from fieldline_backend.devices.schemas import (
    Device,
    DeviceChange,
    DeviceFields,
    DeviceWithCredentials,
    RotatedCredentials,
    parse_tags,
)
from fieldline_backend.devices.service import DeviceRegistry

# Owner ids are the gateway's user ids: 32-bit integer keys on both databases.
OwnerId = Annotated[int, Field(ge=1, le=2**31 - 1)]
OwnerQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]


class DeviceCreateInternal(DeviceFields):
    owner_id: OwnerId


def build_router(
    registry: Callable[[], DeviceRegistry],
    configs: Callable[[], DeviceConfigs],
    commands: Callable[[], DeviceCommands],
    bundles: Callable[[], DeviceBundles],
    rollouts: Callable[[], DeviceRollouts],
) -> APIRouter:
    router = _registry_router(registry)
    router.include_router(config_router(registry, configs))
    router.include_router(command_router(registry, commands))
    router.include_router(bundle_router(bundles))
    router.include_router(rollout_router(registry, rollouts))
    router.include_router(device_update_router(registry, rollouts))
    return router


def _registry_router(registry: Callable[[], DeviceRegistry]) -> APIRouter:
    router = APIRouter(
        prefix="/internal",
        tags=["internal: devices"],
        dependencies=[InternalOnly],
        responses={
            409: {"description": "the device's MQTT account is gone"},
            503: {"description": "mqtt_auth did not complete the change; Retry-After"},
        },
    )

    @router.post("/devices", status_code=status.HTTP_201_CREATED)
    async def create_device(body: DeviceCreateInternal) -> DeviceWithCredentials:
        try:
            return await registry().create(body.owner_id, body.name, body.metadata)
        except MqttAuthFailed as error:
            raise mqtt_auth_failed(error) from error

    @router.get("/devices")
    async def list_devices(
        owner_id: OwnerQuery,
        tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI query
    ) -> list[Device]:
        return await registry().list(owner_id, parse_tags(tag))

    @router.get("/devices/{device_id}")
    async def get_device(device_id: str, owner_id: OwnerQuery | None = None) -> Device:
        with registry_answers(device_id):
            return await registry().get(device_id, owner_id)

    @router.patch("/devices/{device_id}")
    async def change_device(device_id: str, owner_id: OwnerQuery, body: DeviceChange) -> Device:
        with registry_answers(device_id):
            return await registry().change(device_id, owner_id, body.changes())

    @router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_device(device_id: str, owner_id: OwnerQuery) -> Response:
        with registry_answers(device_id):
            await registry().delete(device_id, owner_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/devices/{device_id}/credentials/rotate")
    async def rotate_credentials(device_id: str, owner_id: OwnerQuery) -> RotatedCredentials:
        with registry_answers(device_id):
            return await registry().rotate(device_id, owner_id)

    return router
