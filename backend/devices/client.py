"""DevicesClient: how other services and the gateway's routes use the device registry.

Use it from a FastAPI route through the dependency, which shares one HTTP client per
process (closed when the gateway stops):

    from fieldline_backend.devices.client import DevicesClientDep
    from fieldline_backend.gateway.auth import CurrentUser

    @router.get("/api/v1/devices/{device_id}/telemetry")
    async def telemetry(device_id: str, user: CurrentUser, devices: DevicesClientDep):
        device = await devices.get(device_id, user.id)   # 404 unless user owns it
        ...device.id, device.name, device.metadata, device.enabled, device.owner_id...

    all_mine = await devices.list(user.id)                          # list[Device]
    in_kitchen = await devices.list(user.id, tags={"room": "kitchen"})

Outside a request (a background task), take `devices_client_for(ctx)`.

Errors are HTTPExceptions a route can let through unchanged:
- `DeviceNotFound` (404): no such device, or another owner's (indistinguishable on purpose);
- `DevicesUnavailable` (503): the devices service could not be reached or failed;
- HTTPException(422) for a change the registry refuses, with its message.
Returned devices are `fieldline_backend.devices.schemas.Device` models.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import Depends, HTTPException, Request, status

from fieldline_backend.devices.command_schemas import Command
from fieldline_backend.devices.config_schemas import DeviceConfigState
from fieldline_backend.devices.ota_schemas import BundleInfo, DeviceUpdate, Rollout
from fieldline_backend.devices.schemas import Device, DeviceWithCredentials, RotatedCredentials
from fieldline_backend.devices.service import DEVICE_ID_PATTERN

EXTRAS_KEY = "devices.client"


class DeviceNotFound(HTTPException):
    def __init__(self, device_id: str):
        super().__init__(
            status.HTTP_404_NOT_FOUND,
            f"no device {device_id[:80]!r} among yours; list them with GET /api/v1/devices",
        )


class DevicesUnavailable(HTTPException):
    def __init__(self, why: str):
        super().__init__(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the device registry is unavailable ({why}); try again shortly",
            headers={"Retry-After": "5"},
        )


class DevicesClient:
    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def _call(self, method: str, path: str, device_id: str | None = None, **kwargs):
        if device_id is not None and not DEVICE_ID_PATTERN.fullmatch(device_id):
            raise DeviceNotFound(device_id)  # cannot exist; do not pass it on
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise DevicesUnavailable(type(error).__name__) from error
        if response.status_code == 404 and device_id is not None:
            detail = _detail(response)
            if str(detail).startswith("no command"):  # the device is there, the command not
                raise HTTPException(404, detail)
            raise DeviceNotFound(device_id)
        # A 404 here is not a device's (those are above) but a bundle's or a rollout's.
        if response.status_code in (400, 404, 409, 413, 422, 429):
            retry = response.headers.get("Retry-After")
            headers = {"Retry-After": retry} if retry else None
            raise HTTPException(response.status_code, _detail(response), headers=headers)
        if response.status_code == 503 and "stored as version" in str(_detail(response)):
            # a config change stored but not yet delivered: say so as the service did
            raise HTTPException(503, _detail(response), headers={"Retry-After": "5"})
        if response.status_code >= 300:
            raise DevicesUnavailable(f"it answered {response.status_code}: {_detail(response)}")
        return response

    @staticmethod
    def _path(device_id: str, tail: str = "") -> str:
        return f"/internal/devices/{quote(device_id, safe='')}{tail}"

    async def get(self, device_id: str, owner_id: int) -> Device:
        """The device if owner_id owns it; DeviceNotFound (404) otherwise."""
        response = await self._call(
            "GET", self._path(device_id), device_id, params={"owner_id": owner_id}
        )
        return Device.model_validate(response.json())

    async def list(self, owner_id: int, tags: dict[str, str] | None = None) -> list[Device]:
        """owner_id's devices, oldest first; with tags, only those whose metadata has
        each key with that value (compared as text: true/false, 21.5)."""
        params: list[tuple[str, str | int]] = [("owner_id", owner_id)]
        params += [("tag", f"{key}:{value}") for key, value in (tags or {}).items()]
        response = await self._call("GET", "/internal/devices", params=params)
        return [Device.model_validate(item) for item in response.json()]

    async def create(self, owner_id: int, name: str, metadata: dict) -> DeviceWithCredentials:
        body = {"owner_id": owner_id, "name": name, "metadata": metadata}
        response = await self._call("POST", "/internal/devices", json=body)
        return DeviceWithCredentials.model_validate(response.json())

    async def change(self, device_id: str, owner_id: int, changes: dict) -> Device:
        response = await self._call(
            "PATCH", self._path(device_id), device_id, params={"owner_id": owner_id}, json=changes
        )
        return Device.model_validate(response.json())

    async def delete(self, device_id: str, owner_id: int) -> None:
        await self._call("DELETE", self._path(device_id), device_id, params={"owner_id": owner_id})

    async def rotate(self, device_id: str, owner_id: int) -> RotatedCredentials:
        response = await self._call(
            "POST",
            self._path(device_id, "/credentials/rotate"),
            device_id,
            params={"owner_id": owner_id},
        )
        return RotatedCredentials.model_validate(response.json())

    async def config(self, device_id: str, owner_id: int) -> DeviceConfigState:
        """Desired and reported config of owner_id's device (DeviceNotFound otherwise)."""
        response = await self._call(
            "GET", self._path(device_id, "/config"), device_id, params={"owner_id": owner_id}
        )
        return DeviceConfigState.model_validate(response.json())

    async def change_config(
        self, device_id: str, owner_id: int, changes: dict
    ) -> DeviceConfigState:
        """Store the merged config as the next version and send it (retained)."""
        response = await self._call(
            "PUT",
            self._path(device_id, "/config"),
            device_id,
            params={"owner_id": owner_id},
            json=changes,
        )
        return DeviceConfigState.model_validate(response.json())

    async def send_command(self, device_id: str, owner_id: int, request: dict) -> Command:
        """Store and send a command (202: pending); 429 when 20 wait already."""
        response = await self._call(
            "POST",
            self._path(device_id, "/commands"),
            device_id,
            params={"owner_id": owner_id},
            json=request,
        )
        return Command.model_validate(response.json())

    async def commands(self, device_id: str, owner_id: int, limit: int = 20) -> list[Command]:
        """The device's newest commands first."""
        response = await self._call(
            "GET",
            self._path(device_id, "/commands"),
            device_id,
            params={"owner_id": owner_id, "limit": limit},
        )
        return [Command.model_validate(item) for item in response.json()]

    # ---- OTA updates (docs/ota.md) ----------------------------------------------------

    async def upload_bundle(self, owner_id: int, tar: bytes) -> tuple[BundleInfo, bool]:
        """(the stored bundle, True when new); 413/422 as HTTPExceptions with the reason."""
        response = await self._call(
            "POST",
            "/internal/bundles",
            params={"owner_id": owner_id},
            content=tar,
            headers={"Content-Type": "application/octet-stream"},
        )
        return BundleInfo.model_validate(response.json()), response.status_code == 201

    async def bundles(self, owner_id: int, limit: int = 50) -> list[BundleInfo]:
        response = await self._call(
            "GET", "/internal/bundles", params={"owner_id": owner_id, "limit": limit}
        )
        return [BundleInfo.model_validate(item) for item in response.json()]

    async def bundle(self, owner_id: int, bundle_id: str) -> BundleInfo:
        response = await self._call(
            "GET", f"/internal/bundles/{quote(bundle_id, safe='')}", params={"owner_id": owner_id}
        )
        return BundleInfo.model_validate(response.json())

    async def delete_bundle(self, owner_id: int, bundle_id: str) -> None:
        await self._call(
            "DELETE",
            f"/internal/bundles/{quote(bundle_id, safe='')}",
            params={"owner_id": owner_id},
        )

    async def create_rollout(self, owner_id: int, request: dict) -> Rollout:
        response = await self._call(
            "POST", "/internal/rollouts", params={"owner_id": owner_id}, json=request
        )
        return Rollout.model_validate(response.json())

    async def rollouts(self, owner_id: int, limit: int = 50) -> list[Rollout]:
        response = await self._call(
            "GET", "/internal/rollouts", params={"owner_id": owner_id, "limit": limit}
        )
        return [Rollout.model_validate(item) for item in response.json()]

    async def rollout(self, owner_id: int, rollout_id: str) -> Rollout:
        response = await self._call(
            "GET", f"/internal/rollouts/{quote(rollout_id, safe='')}", params={"owner_id": owner_id}
        )
        return Rollout.model_validate(response.json())

    async def cancel_rollout(self, owner_id: int, rollout_id: str) -> Rollout:
        response = await self._call(
            "POST",
            f"/internal/rollouts/{quote(rollout_id, safe='')}/cancel",
            params={"owner_id": owner_id},
        )
        return Rollout.model_validate(response.json())

    async def update(self, device_id: str, owner_id: int) -> DeviceUpdate:
        """The device's newest rollout entry and the version it last said it runs."""
        response = await self._call(
            "GET", self._path(device_id, "/update"), device_id, params={"owner_id": owner_id}
        )
        return DeviceUpdate.model_validate(response.json())

    async def command(self, device_id: str, owner_id: int, command_id: str) -> Command:
        response = await self._call(
            "GET",
            self._path(device_id, f"/commands/{quote(command_id, safe='')}"),
            device_id,
            params={"owner_id": owner_id},
        )
        return Command.model_validate(response.json())


def _detail(response: httpx.Response):
    try:
        return response.json().get("detail", response.text[:200])
    except (ValueError, AttributeError):
        return response.text[:200]


def devices_client_for(ctx) -> DevicesClient:
    """The process's DevicesClient (one connection pool), made on first use."""
    client = ctx.extras.get(EXTRAS_KEY)
    if client is None:
        client = DevicesClient(ctx.service_client("devices"))
        ctx.extras[EXTRAS_KEY] = client
    return client


async def close_devices_client(ctx) -> None:
    client = ctx.extras.pop(EXTRAS_KEY, None)
    if client is not None:
        await client.http.aclose()


def get_devices_client(request: Request) -> DevicesClient:
    return devices_client_for(request.app.state.ctx)


DevicesClientDep = Annotated[DevicesClient, Depends(get_devices_client)]
