"""OTA updates of the signed-in user's devices (docs/ota.md): bundles (the SDK and app
files a board runs, as a tar), rollouts of a bundle to devices (canaries first, halted
when too many fail), and each device's update state. Another user's bundle, rollout or
device answers 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from fieldline_backend.common.http_limits import read_capped
from fieldline_backend.devices.client import DevicesClientDep
from fieldline_backend.devices.ota_schemas import (
    BUNDLE_ID,
    BUNDLE_MAX_BYTES,
    ROLLOUT_ID,
    BundleInfo,
    DeviceUpdate,
    Rollout,
    RolloutRequest,
    bundle_body_openapi,
    bundle_too_large,
)
from fieldline_backend.gateway.auth import CurrentUser

router = APIRouter(prefix="/api/v1", responses={401: {"description": "not signed in"}})
BundlePath = Annotated[str, Path(pattern="^" + BUNDLE_ID.pattern + "$")]
RolloutPath = Annotated[str, Path(pattern="^" + ROLLOUT_ID.pattern + "$")]
Limit = Annotated[int, Query(ge=1, le=200)]
NO_BUNDLE = {404: {"description": "no such bundle of yours"}}
NO_ROLLOUT = {404: {"description": "no such rollout of yours"}}


@router.post(
    "/bundles",
    tags=["updates"],
    status_code=status.HTTP_201_CREATED,
    response_model=BundleInfo,
    openapi_extra=bundle_body_openapi(),
    responses={
        200: {"model": BundleInfo, "description": "that bundle is stored already"},
        413: {"description": f"over {BUNDLE_MAX_BYTES} bytes"},
        422: {"description": "not a bundle: the reason (a file missing, a hash, a path...)"},
    },
)
async def upload_bundle(request: Request, user: CurrentUser, devices: DevicesClientDep):
    """Upload a bundle (`fieldline bundle -o app.tar`; the body is the tar itself,
    application/octet-stream). Checked whole: every file against the manifest's size
    and hash, paths, version. 201 when new, 200 when you uploaded it before."""
    # Bounded here (Content-Length, then counted as it streams in), with the bundle's
    # own answer; the app's body limit (1 MiB by default) stays the outer bound.
    tar = await read_capped(request, BUNDLE_MAX_BYTES, bundle_too_large())
    info, created = await devices.upload_bundle(user.id, tar)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(info.model_dump(mode="json"), status_code=code)


@router.get("/bundles", tags=["updates"])
async def list_bundles(
    user: CurrentUser, devices: DevicesClientDep, limit: Limit = 50
) -> list[BundleInfo]:
    """Your bundles, newest first."""
    return await devices.bundles(user.id, limit)


@router.get("/bundles/{bundle_id}", tags=["updates"], responses=NO_BUNDLE)
async def get_bundle(
    bundle_id: BundlePath, user: CurrentUser, devices: DevicesClientDep
) -> BundleInfo:
    return await devices.bundle(user.id, bundle_id)


@router.delete(
    "/bundles/{bundle_id}",
    tags=["updates"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NO_BUNDLE, 409: {"description": "a running rollout offers it"}},
)
async def delete_bundle(
    bundle_id: BundlePath, user: CurrentUser, devices: DevicesClientDep
) -> Response:
    await devices.delete_bundle(user.id, bundle_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/rollouts",
    tags=["updates"],
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "a bundle or device that is not yours, or no device tagged so"},
        409: {"description": "a device is in a running rollout already"},
    },
)
async def create_rollout(
    body: RolloutRequest, user: CurrentUser, devices: DevicesClientDep
) -> Rollout:
    """Offer a bundle to devices, named by id (`devices`) or selected by tag (`tag`:
    ["key:value"], all must match; the devices that match now): ceil(canary_fraction *
    n) canaries first (at least one); when they all finished and at most
    max_failure_ratio of them failed, the rest (rolling); halted when failures pass the
    ratio. Follow it with GET /api/v1/rollouts/{id}."""
    return await devices.create_rollout(user.id, body.model_dump(exclude_none=True))


@router.get("/rollouts", tags=["updates"])
async def list_rollouts(
    user: CurrentUser, devices: DevicesClientDep, limit: Limit = 50
) -> list[Rollout]:
    """Your rollouts, newest first."""
    return await devices.rollouts(user.id, limit)


@router.get("/rollouts/{rollout_id}", tags=["updates"], responses=NO_ROLLOUT)
async def get_rollout(
    rollout_id: RolloutPath, user: CurrentUser, devices: DevicesClientDep
) -> Rollout:
    return await devices.rollout(user.id, rollout_id)


@router.post("/rollouts/{rollout_id}/cancel", tags=["updates"], responses=NO_ROLLOUT)
async def cancel_rollout(
    rollout_id: RolloutPath, user: CurrentUser, devices: DevicesClientDep
) -> Rollout:
    """Stop a rollout: offers not yet taken are withdrawn; devices already downloading
    finish (their reports still show here). A finished rollout is answered as it is."""
    return await devices.cancel_rollout(user.id, rollout_id)


@router.get(
    "/devices/{device_id}/update",
    tags=["devices"],
    responses={404: {"description": "no such device of yours"}},
)
async def device_update(
    device_id: str, user: CurrentUser, devices: DevicesClientDep
) -> DeviceUpdate:
    """The device's newest rollout entry (null when none) and the SDK/app version it
    last said it runs."""
    return await devices.update(device_id, user.id)
