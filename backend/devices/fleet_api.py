"""devices' internal API for managing devices in the field (docs/fleet.md): desired and
reported config, commands and their results. The owner is explicit in every public
call; the reports come from storage, which passes on what devices said."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import ConfigDict

from fieldline_backend.devices.api_errors import registry_answers
from fieldline_backend.devices.command_schemas import (
    Arrival,
    Command,
    CommandOutcome,
    CommandRequest,
)
from fieldline_backend.devices.commands import DeviceCommands, TooManyPending
from fieldline_backend.devices.config_schemas import (
    ConfigChange,
    ConfigReport,
    DeviceConfigState,
)
from fieldline_backend.devices.configs import ConfigNotDelivered, DeviceConfigs
from fieldline_backend.devices.service import DeviceRegistry

OwnerQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]


class ConfigReportInternal(ConfigReport):
    """storage passes the device's report on with the time it arrived (strict: storage
    sends exactly these types)."""

    model_config = ConfigDict(extra="forbid")

    at: Arrival


async def _owned(registry: DeviceRegistry, device_id: str, owner_id: int | None) -> None:
    with registry_answers(device_id):
        await registry.get(device_id, owner_id)


def config_router(
    registry: Callable[[], DeviceRegistry], configs: Callable[[], DeviceConfigs]
) -> APIRouter:
    router = APIRouter()

    @router.get("/devices/{device_id}/config")
    async def get_config(device_id: str, owner_id: OwnerQuery) -> DeviceConfigState:
        await _owned(registry(), device_id, owner_id)
        return await configs().state(device_id)

    @router.put("/devices/{device_id}/config")
    async def change_config(
        device_id: str, owner_id: OwnerQuery, body: ConfigChange
    ) -> DeviceConfigState:
        await _owned(registry(), device_id, owner_id)
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
        await _owned(registry(), device_id, None)
        await configs().record_report(device_id, body, body.at)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def command_router(
    registry: Callable[[], DeviceRegistry], commands: Callable[[], DeviceCommands]
) -> APIRouter:
    router = APIRouter()

    @router.post("/devices/{device_id}/commands", status_code=status.HTTP_202_ACCEPTED)
    async def send_command(device_id: str, owner_id: OwnerQuery, body: CommandRequest) -> Command:
        await _owned(registry(), device_id, owner_id)
        try:
            return await commands().send(device_id, body)
        except TooManyPending as error:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "this device has 20 commands waiting already; wait for them to finish or "
                "expire (GET .../commands)",
                headers={"Retry-After": "30"},
            ) from error

    @router.get("/devices/{device_id}/commands")
    async def list_commands(
        device_id: str, owner_id: OwnerQuery, limit: Annotated[int, Query(ge=1, le=200)] = 20
    ) -> list[Command]:
        await _owned(registry(), device_id, owner_id)
        return await commands().recent(device_id, limit)

    @router.get("/devices/{device_id}/commands/{command_id}")
    async def get_command(device_id: str, command_id: str, owner_id: OwnerQuery) -> Command:
        await _owned(registry(), device_id, owner_id)
        command = await commands().get(device_id, command_id)
        if command is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id[:40]!r}")
        return command

    @router.post("/devices/{device_id}/commands/reported", status_code=status.HTTP_204_NO_CONTENT)
    async def command_reported(device_id: str, body: CommandOutcome) -> Response:
        await _owned(registry(), device_id, None)
        if not await commands().record_report(device_id, body):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {body.id!r} of this device")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
