"""The device page's fleet forms (docs/fleet.md): change the desired config (the keys
given change, the others keep their value) and send a command. A refused form shows the
device page again with the API's reasons."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from fieldline_backend.console.api import ApiError
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.pages_devices import render_device_page
from fieldline_backend.console.pages_new_device import CLI_OPTION, sensor_specs
from fieldline_backend.console.web import FormDep, SessionDep, redirect
from fieldline_provision.device_config import parse_sensor_spec
from fieldline_provision.errors import UsageError

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def config_change(form: dict) -> tuple[dict, list[str]]:
    """The PUT body from the form's filled fields, and what is wrong with them."""
    change: dict = {}
    errors: list[str] = []
    interval = str(form.get("interval_s", "")).strip()
    if interval:
        try:
            change["interval_s"] = float(interval)
        except ValueError:
            errors.append(f"interval: {interval!r} is not a number of seconds")
    sensors = str(form.get("sensors", "")).strip()
    if sensors:
        try:
            change["sensors"] = [parse_sensor_spec(s).as_config() for s in sensor_specs(sensors)]
        except UsageError as error:
            errors.append(CLI_OPTION.sub("", str(error)))
    app = str(form.get("app", "")).strip()
    if app:
        try:
            change["app"] = json.loads(app)
        except ValueError as error:
            errors.append(f"app settings: not JSON ({error})")
    if not change and not errors:
        errors.append("fill in at least one of interval, sensors or app settings")
    return change, errors


async def _send(request, session, device_id: str, form: dict, part: str, call, errors):
    """Make the API call unless the form is wrong already; back to the page's section of
    `part` (config or command) with a notice, or the page again with the reasons (422)."""
    if not errors:
        try:
            await call()
            section = "config-h" if part == "config" else "commands-h"
            return redirect(f"/devices/{device_id}#{section}", f"{part}-sent")
        except ApiError as error:
            if error.status == 404:
                raise
            errors = error.messages()
    extra = {f"{part}_errors": errors, f"{part}_form": form}
    return await render_device_page(request, session, device_id, status=422, **extra)


@router.post("/devices/{device_id}/config")
async def change_config(
    request: Request, device_id: str, session: SessionDep, form: FormDep
) -> Response:
    change, errors = config_change(form)

    def call():
        return session.api.put(f"/devices/{device_id}/config", change)

    return await _send(request, session, device_id, form, "config", call, errors)


@router.post("/devices/{device_id}/commands")
async def send_command(
    request: Request, device_id: str, session: SessionDep, form: FormDep
) -> Response:
    body: dict = {"name": str(form.get("name", "")).strip()}
    errors: list[str] = []
    args = str(form.get("args", "")).strip()
    if args:
        try:
            body["args"] = json.loads(args)
        except ValueError as error:
            errors.append(f"args: not JSON ({error})")

    def call():
        return session.api.post(f"/devices/{device_id}/commands", body)

    return await _send(request, session, device_id, form, "command", call, errors)
