"""mqtt_auth's internal HTTP API (docs/architecture.md, "mqtt_auth service")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.mqtt_auth.acl import CLIENT_ID_PATTERN
from fieldline_backend.mqtt_auth.service import (
    AccountExists,
    AccountNotFound,
    Credentials,
    DeviceInfo,
    InvalidClientId,
    MqttAccounts,
)


class AccountCreate(BaseModel):
    # Text, and a valid MQTT client id (the schema says so; the service checks it too).
    device_id: StrictStr = Field(min_length=1, max_length=64, pattern=CLIENT_ID_PATTERN.pattern)
    # The gateway's user id, sent as a JSON number or as text; stored as text.
    owner_id: StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=64)]
    name: StrictStr = Field(max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class AccountPatch(BaseModel):
    enabled: StrictBool | None = None  # JSON true/false only
    name: StrictStr | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None


class CredentialsOut(BaseModel):
    client_id: str
    username: str
    password: str


class DeviceInfoOut(BaseModel):
    device_id: str
    owner_id: str
    name: str
    metadata: dict[str, Any]
    enabled: bool


def _credentials(credentials: Credentials) -> CredentialsOut:
    return CredentialsOut(
        client_id=credentials.client_id,
        username=credentials.username,
        password=credentials.password,
    )


def _info(info: DeviceInfo) -> DeviceInfoOut:
    return DeviceInfoOut(
        device_id=info.device_id,
        owner_id=info.owner_id,
        name=info.name,
        metadata=info.metadata,
        enabled=info.enabled,
    )


def _not_found(client_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no MQTT account for client id {client_id!r}")


@contextmanager
def _known(client_id: str) -> Iterator[None]:
    """AccountNotFound as a 404 naming the client id."""
    try:
        yield
    except AccountNotFound as error:
        raise _not_found(client_id) from error


def build_router(accounts: Callable[[], MqttAccounts]) -> APIRouter:
    router = APIRouter(
        prefix="/internal", tags=["internal: mqtt_auth"], dependencies=[InternalOnly]
    )

    @router.post(
        "/mqtt-accounts",
        status_code=status.HTTP_201_CREATED,
        responses={409: {"description": "an account of that client id exists already"}},
    )
    async def create_account(body: AccountCreate) -> CredentialsOut:
        try:
            credentials = await accounts().create(
                body.device_id, str(body.owner_id), body.name, body.metadata
            )
        except InvalidClientId as error:
            raise HTTPException(422, str(error)) from error
        except AccountExists as error:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"an MQTT account {body.device_id!r} exists already; pick another device id",
            ) from error
        return _credentials(credentials)

    @router.post("/mqtt-accounts/{client_id}/rotate")
    async def rotate_password(client_id: str) -> CredentialsOut:
        with _known(client_id):
            return _credentials(await accounts().rotate(client_id))

    @router.patch("/mqtt-accounts/{client_id}")
    async def update_account(client_id: str, body: AccountPatch) -> DeviceInfoOut:
        with _known(client_id):
            info = await accounts().update(
                client_id, enabled=body.enabled, name=body.name, metadata=body.metadata
            )
        return _info(info)

    @router.delete("/mqtt-accounts/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_account(client_id: str) -> Response:
        with _known(client_id):
            await accounts().delete(client_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/devices/by-client/{client_id}")
    async def device_by_client(client_id: str) -> DeviceInfoOut:
        info = await accounts().device_info(client_id)
        if info is None:
            raise _not_found(client_id)
        return _info(info)

    return router
