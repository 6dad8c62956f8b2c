"""devices' internal API for OTA updates (docs/ota.md): bundles, rollouts, a device's
update state; the owner is explicit in every call. The device reports come from
storage, which passes on what devices said on devices/<id>/ota/reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from fieldline_backend.common.http_limits import read_capped
from fieldline_backend.devices.api_errors import registry_answers
from fieldline_backend.devices.bundle_repository import BundleInUse
from fieldline_backend.devices.bundles import BundleRefused, DeviceBundles
from fieldline_backend.devices.ota_schemas import (
    BUNDLE_ID,
    BUNDLE_MAX_BYTES,
    ROLLOUT_DEVICES_MAX,
    ROLLOUT_ID,
    BundleInfo,
    DeviceUpdate,
    OtaReportInternal,
    Rollout,
    RolloutRequest,
    bundle_body_openapi,
    bundle_too_large,
)
from fieldline_backend.devices.rollout_repository import DevicesBusy
from fieldline_backend.devices.rollouts import BundleNotFound, DeviceRollouts, DevicesNotFound
from fieldline_backend.devices.service import DeviceRegistry

OwnerQuery = Annotated[int, Query(ge=1, le=2**31 - 1)]
LimitQuery = Annotated[int, Query(ge=1, le=200)]
BundlePath = Annotated[str, Path(pattern="^" + BUNDLE_ID.pattern + "$")]
RolloutPath = Annotated[str, Path(pattern="^" + ROLLOUT_ID.pattern + "$")]
TAR_BODY = bundle_body_openapi()


def no_bundle(bundle_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"no bundle {bundle_id[:64]!r} among yours; upload it with POST /api/v1/bundles",
    )


def no_rollout(rollout_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"no rollout {rollout_id[:40]!r} among yours; list them with GET /api/v1/rollouts",
    )


def _listed(devices: list[str]) -> str:
    return ", ".join(devices[:5]) + (" ..." if len(devices) > 5 else "")


def refused_rollout(error: Exception, body: RolloutRequest) -> HTTPException:
    if isinstance(error, BundleNotFound):
        return no_bundle(body.bundle_id)
    if isinstance(error, DevicesNotFound):
        return HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no device {_listed(error.devices)} among yours; list them with GET /api/v1/devices",
        )
    return HTTPException(
        status.HTTP_409_CONFLICT,
        f"already in a running rollout: {_listed(error.devices)}; wait for it to finish or "
        "cancel it (POST /api/v1/rollouts/{id}/cancel)",
    )


def bundle_router(bundles: Callable[[], DeviceBundles]) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/bundles",
        status_code=status.HTTP_201_CREATED,
        response_model=BundleInfo,
        openapi_extra=TAR_BODY,
        responses={200: {"model": BundleInfo, "description": "stored already"}},
    )
    async def upload_bundle(request: Request, owner_id: OwnerQuery) -> JSONResponse:
        # Bounded here, not with max_body_size=: FastAPI would answer a bare text 413 on
        # an included router's route, which the body limit middleware does not see.
        data = await read_capped(request, BUNDLE_MAX_BYTES, bundle_too_large())
        try:
            info, created = await bundles().upload(owner_id, data)
        except BundleRefused as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return JSONResponse(info.model_dump(mode="json"), status_code=code)

    @router.get("/bundles")
    async def list_bundles(owner_id: OwnerQuery, limit: LimitQuery = 50) -> list[BundleInfo]:
        return await bundles().list(owner_id, limit)

    @router.get("/bundles/{bundle_id}")
    async def get_bundle(bundle_id: BundlePath, owner_id: OwnerQuery) -> BundleInfo:
        info = await bundles().get(owner_id, bundle_id)
        if info is None:
            raise no_bundle(bundle_id)
        return info

    @router.delete(
        "/bundles/{bundle_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={409: {"description": "a running rollout offers it"}},
    )
    async def delete_bundle(bundle_id: BundlePath, owner_id: OwnerQuery) -> Response:
        try:
            deleted = await bundles().delete(owner_id, bundle_id)
        except BundleInUse as error:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "a running rollout offers this bundle; cancel it first "
                "(POST /api/v1/rollouts/{id}/cancel)",
            ) from error
        if not deleted:
            raise no_bundle(bundle_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


async def _selected(registry: DeviceRegistry, owner_id: int, body: RolloutRequest):
    """A tag selector made a list of devices: the ones that match now."""
    if body.tag is None:
        return body
    matching = await registry.list(owner_id, body.tags())
    if not matching:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no device of yours matches tag {_listed(body.tag)}; "
            "see which do with GET /api/v1/devices?tag=key:value",
        )
    if len(matching) > ROLLOUT_DEVICES_MAX:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"tag {_listed(body.tag)} selects {len(matching)} devices; a rollout takes at "
            f"most {ROLLOUT_DEVICES_MAX}: narrow it with another tag",
        )
    ids = sorted(device.id for device in matching)
    return body.model_copy(update={"devices": ids, "tag": None})


def rollout_router(
    registry: Callable[[], DeviceRegistry], rollouts: Callable[[], DeviceRollouts]
) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/rollouts",
        status_code=status.HTTP_201_CREATED,
        responses={
            404: {"description": "a bundle or device not the owner's, or no device tagged so"},
            409: {"description": "a device is in a running rollout already"},
        },
    )
    async def create_rollout(owner_id: OwnerQuery, body: RolloutRequest) -> Rollout:
        body = await _selected(registry(), owner_id, body)
        try:
            return await rollouts().create(owner_id, body)
        except (BundleNotFound, DevicesNotFound, DevicesBusy) as error:
            raise refused_rollout(error, body) from error

    @router.get("/rollouts")
    async def list_rollouts(owner_id: OwnerQuery, limit: LimitQuery = 50) -> list[Rollout]:
        return await rollouts().list(owner_id, limit)

    @router.get("/rollouts/{rollout_id}")
    async def get_rollout(rollout_id: RolloutPath, owner_id: OwnerQuery) -> Rollout:
        rollout = await rollouts().get(owner_id, rollout_id)
        if rollout is None:
            raise no_rollout(rollout_id)
        return rollout

    @router.post("/rollouts/{rollout_id}/cancel")
    async def cancel_rollout(rollout_id: RolloutPath, owner_id: OwnerQuery) -> Rollout:
        rollout = await rollouts().cancel(owner_id, rollout_id)
        if rollout is None:
            raise no_rollout(rollout_id)
        return rollout

    return router


def device_update_router(
    registry: Callable[[], DeviceRegistry], rollouts: Callable[[], DeviceRollouts]
) -> APIRouter:
    router = APIRouter()

    @router.get("/devices/{device_id}/update")
    async def device_update(device_id: str, owner_id: OwnerQuery) -> DeviceUpdate:
        with registry_answers(device_id):
            await registry().get(device_id, owner_id)
        return await rollouts().update_of(device_id)

    @router.post("/devices/{device_id}/ota/reported", status_code=status.HTTP_204_NO_CONTENT)
    async def ota_reported(device_id: str, body: OtaReportInternal) -> Response:
        with registry_answers(device_id):
            await registry().get(device_id, None)
        await rollouts().report(device_id, body, body.at)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
