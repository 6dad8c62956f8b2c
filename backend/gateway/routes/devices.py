"""Devices of the signed-in user: register (MQTT credentials shown once), list, read,
change, disable, delete, rotate credentials. Another user's device answers 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from fieldline_backend.devices.client import DevicesClientDep
from fieldline_backend.devices.command_schemas import Command, CommandRequest
from fieldline_backend.devices.config_schemas import ConfigChange, DeviceConfigState
from fieldline_backend.devices.schemas import (
    Device,
    DeviceChange,
    DeviceCreate,
    DeviceWithCredentials,
    RotatedCredentials,
    parse_tags,
)
from fieldline_backend.gateway.auth import CurrentUser, NoStore

router = APIRouter(
    prefix="/api/v1/devices",
    tags=["devices"],
    responses={401: {"description": "not signed in"}},
)
NOT_FOUND = {404: {"description": "no such device of yours"}}


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[NoStore])
async def register_device(
    body: DeviceCreate, user: CurrentUser, devices: DevicesClientDep
) -> DeviceWithCredentials:
    """Register a device. The answer holds its MQTT password: it is shown only this once."""
    return await devices.create(user.id, body.name, body.metadata)


@router.get("")
async def list_devices(
    user: CurrentUser,
    devices: DevicesClientDep,
    tag: Annotated[list[str], Query(description="key:value, repeatable; all must match")] = [],  # noqa: B006 - FastAPI query default
) -> list[Device]:
    return await devices.list(user.id, parse_tags(tag))


@router.get("/{device_id}", responses=NOT_FOUND)
async def get_device(device_id: str, user: CurrentUser, devices: DevicesClientDep) -> Device:
    return await devices.get(device_id, user.id)


@router.patch("/{device_id}", responses=NOT_FOUND)
async def change_device(
    device_id: str, body: DeviceChange, user: CurrentUser, devices: DevicesClientDep
) -> Device:
    """Change name, metadata (replaced as a whole) or enabled; {"enabled": false} stops
    the device from connecting and closes its open connection."""
    return await devices.change(device_id, user.id, body.changes())


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_device(device_id: str, user: CurrentUser, devices: DevicesClientDep) -> Response:
    await devices.delete(device_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{device_id}/credentials/rotate", responses=NOT_FOUND, dependencies=[NoStore])
async def rotate_credentials(
    device_id: str, user: CurrentUser, devices: DevicesClientDep
) -> RotatedCredentials:
    """A new MQTT password, shown once; the old one stops working at once."""
    return await devices.rotate(device_id, user.id)


@router.get("/{device_id}/config", responses=NOT_FOUND)
async def get_config(
    device_id: str, user: CurrentUser, devices: DevicesClientDep
) -> DeviceConfigState:
    """The desired config (newest version), what the device last reported, and whether
    the device has yet to report on the newest version (`pending`)."""
    return await devices.config(device_id, user.id)


@router.put(
    "/{device_id}/config",
    responses={
        **NOT_FOUND,
        503: {"description": "stored as a new version, but the broker did not take it now"},
    },
)
async def change_config(
    device_id: str, body: ConfigChange, user: CurrentUser, devices: DevicesClientDep
) -> DeviceConfigState:
    """Change the device's configuration: the keys given change (null removes one), the
    others keep their value. Stored as the next version and sent to the device retained
    on devices/<id>/config; it applies it and reports on devices/<id>/config/reported."""
    return await devices.change_config(device_id, user.id, body.changes())


@router.post(
    "/{device_id}/commands",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 429: {"description": "20 commands wait for this device already"}},
)
async def send_command(
    device_id: str, body: CommandRequest, user: CurrentUser, devices: DevicesClientDep
) -> Command:
    """Send a command (built in: reboot, ping, sync_time, flush; or one the firmware
    registered). Answers at once with its id, pending; follow it with GET
    .../commands/{command_id}: delivered, then succeeded or failed with the device's
    result or error, or expired when the device did not take it within ttl_s."""
    return await devices.send_command(device_id, user.id, body.model_dump())


@router.get("/{device_id}/commands", responses=NOT_FOUND)
async def list_commands(
    device_id: str,
    user: CurrentUser,
    devices: DevicesClientDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[Command]:
    """The device's newest commands first."""
    return await devices.commands(device_id, user.id, limit)


@router.get("/{device_id}/commands/{command_id}", responses=NOT_FOUND)
async def get_command(
    device_id: str, command_id: str, user: CurrentUser, devices: DevicesClientDep
) -> Command:
    return await devices.command(device_id, user.id, command_id)
