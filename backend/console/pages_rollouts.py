"""OTA updates in the console (docs/ota.md): the rollouts list, a rollout's page with
its devices (refreshed while it runs) and its Cancel behind a confirmation, the form
that starts one, the bundles with their upload form, and the device page's Update
section as a live fragment. Everything through the public API, like every page."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from fieldline_backend.console.api import Api, ApiError
from fieldline_backend.console.charts import stamp
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.rollout_view import CANCELLABLE, device_update, rollout_view
from fieldline_backend.console.web import (
    FormDep,
    SessionDep,
    compressed_fragment,
    or_not_found,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
NOT_YOURS = "no such rollout of yours"
LISTED = 50
DEFAULTS = {"canary_percent": "10", "failure_percent": "20"}  # the API's 0.1 and 0.2


async def _names(api: Api) -> dict[str, str]:
    return {d["id"]: d["name"] for d in await api.get("/devices")}


# ---- rollouts ---------------------------------------------------------------------------


@router.get("/rollouts")
async def rollouts_page(request: Request, session: SessionDep) -> Response:
    rollouts = await session.api.get("/rollouts", limit=LISTED)
    views = [rollout_view(r) for r in rollouts]
    return render(request, "rollouts.html", session, rollouts=views, title="Rollouts")


def _bundle_view(bundle: dict) -> dict:
    size = bundle["size"]
    return {
        **bundle,
        "kind": f"bytecode {bundle['mpy']}" if bundle.get("mpy") else "source",
        "size_text": f"{math.ceil(size / 1024)} KiB" if size >= 1024 else f"{size} bytes",
        "uploaded": stamp(bundle["created_at"]),
    }


async def _form_page(request, session, values: dict, status: int = 200, errors=None):
    bundles, devices = await asyncio.gather(
        session.api.get("/bundles", limit=200), session.api.get("/devices")
    )
    if not values.get("bundle_id") and bundles:
        values = {**values, "bundle_id": bundles[0]["id"]}  # the newest
    return render(
        request, "rollout_form.html", session, status=status, values=values,
        bundles=[_bundle_view(b) for b in bundles], devices=devices, errors=errors or [],
        title="Start a rollout",
    )  # fmt: skip


def _as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@router.get("/rollouts/new")
async def new_rollout(
    request: Request, session: SessionDep, bundle_id: str = "", device_id: str = ""
) -> Response:
    values = {**DEFAULTS, "bundle_id": bundle_id, "devices": _as_list(device_id)}
    values["allow_downgrade"] = False
    return await _form_page(request, session, values)


def _share(form: dict, key: str, what: str, errors: list[str]) -> float | None:
    text = str(form.get(key, "")).strip().removesuffix("%").strip() or DEFAULTS[key]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 100:  # also NaN
        errors.append(f"{what}: {text!r} is not a percentage from 0 to 100")
        return None
    return round(value / 100, 6)


def rollout_request(form: dict) -> tuple[dict, list[str]]:
    """The POST /api/v1/rollouts body from the form, and what is wrong with it."""
    errors: list[str] = []
    bundle_id = str(form.get("bundle_id", "")).strip()
    if not bundle_id:
        errors.append("bundle: choose one (upload it on the Bundles page first)")
    devices = _as_list(form.get("devices"))
    if not devices:
        errors.append("devices: tick at least one")
    body = {
        "bundle_id": bundle_id,
        "devices": devices,
        "canary_fraction": _share(form, "canary_percent", "canaries", errors),
        "max_failure_ratio": _share(form, "failure_percent", "failure share", errors),
        "allow_downgrade": str(form.get("allow_downgrade", "")) in ("on", "true", "1"),
    }
    return body, errors


@router.post("/rollouts")
async def start_rollout(request: Request, session: SessionDep, form: FormDep) -> Response:
    body, errors = rollout_request(form)
    status = 422
    if not errors:
        try:
            rollout = await session.api.post("/rollouts", body)
            return redirect(f"/rollouts/{rollout['id']}", "rollout-started")
        except ApiError as error:
            if not 400 <= error.status < 500:
                raise
            # 404 a bundle or device not yours, 409 a device busy, 422 bounds: say why.
            status, errors = error.status, error.messages()
    values = {
        "bundle_id": body["bundle_id"], "devices": body["devices"],
        "allow_downgrade": body["allow_downgrade"],
        **{k: str(form.get(k, DEFAULTS[k])) for k in DEFAULTS},
    }  # fmt: skip
    return await _form_page(request, session, values, status=status, errors=errors)


async def _rollout(api: Api, rollout_id: str) -> dict:
    rollout, names = await asyncio.gather(
        or_not_found(api.get(f"/rollouts/{rollout_id}"), NOT_YOURS), _names(api)
    )
    return rollout_view(rollout, names)


@router.get("/rollouts/{rollout_id}")
async def rollout_page(request: Request, rollout_id: str, session: SessionDep) -> Response:
    rollout = await _rollout(session.api, rollout_id)
    title = f"Rollout of {rollout['version']}"
    return render(request, "rollout.html", session, rollout=rollout, title=title)


@router.get("/rollouts/{rollout_id}/live")
async def rollout_live(request: Request, rollout_id: str, session: SessionDep) -> Response:
    """The rollout's state and devices alone: the page's script swaps them in."""
    rollout = await _rollout(session.api, rollout_id)
    response = render(request, "_rollout_live.html", session, rollout=rollout)
    return compressed_fragment(request, response)


CANCEL = (
    "Cancel this rollout",
    "Devices not downloading yet lose their offer and keep the version they run; a device "
    "already downloading finishes (its report still shows). A cancelled rollout cannot "
    "be started again: start a new one.",
)


@router.get("/rollouts/{rollout_id}/cancel")
async def cancel_page(request: Request, rollout_id: str, session: SessionDep) -> Response:
    rollout = await _rollout(session.api, rollout_id)
    heading, consequence = CANCEL
    return render(
        request, "confirm.html", session, title=heading, heading=heading,
        consequence=consequence,
        subject=f"Version {rollout['version']} to {rollout['total']} device(s), {rollout['label']}",
        action=f"/rollouts/{rollout_id}/cancel", back=f"/rollouts/{rollout_id}",
    )  # fmt: skip


@router.post("/rollouts/{rollout_id}/cancel")
async def cancel(request: Request, rollout_id: str, session: SessionDep, form: FormDep):
    before = await or_not_found(session.api.get(f"/rollouts/{rollout_id}"), NOT_YOURS)
    if before["state"] not in CANCELLABLE:  # the API answers it as it is: say so
        return redirect(f"/rollouts/{rollout_id}", "rollout-not-running")
    await or_not_found(session.api.post(f"/rollouts/{rollout_id}/cancel"), NOT_YOURS)
    return redirect(f"/rollouts/{rollout_id}", "rollout-cancelled")


# ---- bundles ----------------------------------------------------------------------------


async def _bundles_page(request, session, status: int = 200, errors=None) -> Response:
    bundles = await session.api.get("/bundles", limit=200)
    return render(
        request, "bundles.html", session, status=status, errors=errors or [],
        bundles=[_bundle_view(b) for b in bundles], title="Bundles",
    )  # fmt: skip


@router.get("/bundles")
async def bundles_page(request: Request, session: SessionDep) -> Response:
    return await _bundles_page(request, session)


@router.post("/bundles")
async def upload_bundle(request: Request, session: SessionDep, form: FormDep) -> Response:
    """The form's file, its bytes posted as they are to POST /api/v1/bundles (which
    checks it whole); then on to start a rollout of it."""
    upload = form.get("bundle")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    if not data:
        return await _bundles_page(
            request, session, 422, ["choose a bundle file (a .tar made by fieldline bundle)"]
        )
    try:
        status, bundle = await session.api.post_bytes("/bundles", data)
    except ApiError as error:
        if not 400 <= error.status < 500:
            raise
        return await _bundles_page(request, session, error.status, error.messages())
    notice = "bundle-uploaded" if status == 201 else "bundle-known"
    return redirect(f"/rollouts/new?bundle_id={bundle['id']}", notice)


@router.get("/bundles/{bundle_id}/delete")
async def delete_bundle_page(request: Request, bundle_id: str, session: SessionDep):
    bundle = await or_not_found(session.api.get(f"/bundles/{bundle_id}"), "no such bundle")
    heading = "Delete this bundle"
    return render(
        request, "confirm.html", session, title=heading, heading=heading,
        consequence="Its files are removed from the server. Devices that run it keep "
        "running it; past rollouts of it stay listed.",
        subject=f"Version {bundle['version']} ({bundle_id[:12]}…)",
        action=f"/bundles/{bundle_id}/delete", back="/bundles",
    )  # fmt: skip


@router.post("/bundles/{bundle_id}/delete")
async def delete_bundle(request: Request, bundle_id: str, session: SessionDep, form: FormDep):
    try:
        await or_not_found(session.api.delete(f"/bundles/{bundle_id}"), "no such bundle")
    except ApiError as error:
        if error.status != 409:
            raise
        return await _bundles_page(request, session, 409, error.messages())
    return redirect("/bundles", "bundle-deleted")


# ---- the device page's Update section ---------------------------------------------------


@router.get("/devices/{device_id}/update/live")
async def device_update_live(request: Request, device_id: str, session: SessionDep):
    """The Update section's body: the device page's script swaps it in while the
    device's update moves (downloading, rebooting...)."""
    await or_not_found(session.api.get(f"/devices/{device_id}"), "no such device of yours")
    update = await device_update(session.api, device_id)
    if not update["available"]:
        raise HTTPException(404, update["reason"])
    response = render(request, "_device_update.html", session, update=update)
    return compressed_fragment(request, response)
