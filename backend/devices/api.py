"""devices' internal HTTP API (docs/architecture.md, "devices service"). The owner is
explicit in every call; the gateway maps public requests onto these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import Field

from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.devices.config_schemas import (
    ConfigChange,
    ConfigReport,
    DeviceConfigState,
)
from fieldline_backend.devices.configs import ConfigNotDelivered, DeviceConfigs
from fieldline_backend.devices.mqtt_accounts import MqttAuthFailed
from fieldline_backend.devices.schemas import (
    Device,
    DeviceChange,
    DeviceFields,
    DeviceWithCredentials,
    RotatedCredentials,
    parse_tags,
)
from fieldline_backend.devices.service import DeviceNotFound, DeviceRegistry

# Owner ids are the gateway's user ids: 32-bit integer keys on both databases.
OwnerId = Annotated[int, Field(ge=1, le=2**31 - 1)]
OwnerQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]


class DeviceCreateInternal(DeviceFields):
    owner_id: OwnerId


class ConfigReportInternal(ConfigReport):
    """storage passes the device's report on with the time it arrived."""

    at: datetime


def _not_found(device_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")


def _mqtt_auth_failed(error: MqttAuthFailed) -> HTTPException:
    if error.status == 404:  # not transient: retrying would answer 503 for ever
        return HTTPException(
            status.HTTP_409_CONFLICT,
            f"the device's MQTT account is gone ({error}); delete the device and register it again",
        )
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the MQTT account service did not complete the change ({error}); nothing was "
        "changed, try again shortly",
        headers={"Retry-After": "5"},
    )


@contextmanager
def _registry_answers(device_id: str) -> Iterator[None]:
    """The registry's failures as this API's answers (404, 503 with Retry-After)."""
    try:
        yield
    except DeviceNotFound as error:
        raise _not_found(device_id) from error
    except MqttAuthFailed as error:
        raise _mqtt_auth_failed(error) from error


def build_router(
    registry: Callable[[], DeviceRegistry], configs: Callable[[], DeviceConfigs]
) -> APIRouter:
    router = _registry_router(registry)
    router.include_router(_config_router(registry, configs))
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
            raise _mqtt_auth_failed(error) from error

    @router.get("/devices")
    async def list_devices(
        owner_id: OwnerQuery,
        tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI query
    ) -> list[Device]:
        return await registry().list(owner_id, parse_tags(tag))

    @router.get("/devices/{device_id}")
    async def get_device(device_id: str, owner_id: OwnerQuery | None = None) -> Device:
        with _registry_answers(device_id):
            return await registry().get(device_id, owner_id)

    @router.patch("/devices/{device_id}")
    async def change_device(device_id: str, owner_id: OwnerQuery, body: DeviceChange) -> Device:
        with _registry_answers(device_id):
            return await registry().change(device_id, owner_id, body.changes())

    @router.delete("/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_device(device_id: str, owner_id: OwnerQuery) -> Response:
        with _registry_answers(device_id):
            await registry().delete(device_id, owner_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/devices/{device_id}/credentials/rotate")
    async def rotate_credentials(device_id: str, owner_id: OwnerQuery) -> RotatedCredentials:
        with _registry_answers(device_id):
            return await registry().rotate(device_id, owner_id)

    return router


def _config_router(
    registry: Callable[[], DeviceRegistry], configs: Callable[[], DeviceConfigs]
) -> APIRouter:
    """Desired and reported config (docs/fleet.md)."""
    router = APIRouter()

    @router.get("/devices/{device_id}/config")
    async def get_config(device_id: str, owner_id: OwnerQuery) -> DeviceConfigState:
        with _registry_answers(device_id):
            await registry().get(device_id, owner_id)
        return await configs().state(device_id)

    @router.put("/devices/{device_id}/config")
    async def change_config(
        device_id: str, owner_id: OwnerQuery, body: ConfigChange
    ) -> DeviceConfigState:
        with _registry_answers(device_id):
            await registry().get(device_id, owner_id)
        try:
            await configs().change(device_id, body.changes())
        except ValueError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from error
        except ConfigNotDelivered as error:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"stored as version {error.desired.version}, but the MQTT broker did not take "
                f"it now ({error}); it is sent when the broker is back and the devices "
                "service starts, or with your next change",
                headers={"Retry-After": "5"},
            ) from error
        return await configs().state(device_id)

    @router.post("/devices/{device_id}/config/reported", status_code=status.HTTP_204_NO_CONTENT)
    async def config_reported(device_id: str, body: ConfigReportInternal) -> Response:
        with _registry_answers(device_id):
            await registry().get(device_id)
        await configs().record_report(device_id, body, body.at)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
