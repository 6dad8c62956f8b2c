"""Adding a device from the console, for a user with no board yet or who flashes by hand:
name and tags, then the MQTT credentials shown once, the board's config.json to download
(the same file `provision flash` writes, built by the same code) and the `provision flash
--device-id` command for those who have the tool."""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from fieldline_backend.console.api import ApiError
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.web import FormDep, SessionDep, render
from fieldline_provision.device_config import (
    DEFAULT_INTERVAL_S,
    SENSOR_SPEC_HELP,
    build_config,
    check_interval,
    check_sensor_count,
    check_wifi,
    parse_sensor_spec,
)
from fieldline_provision.errors import UsageError

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
TAG_LINE = re.compile(r"\s*([^=:\s]+)\s*[=:]\s*(.*?)\s*\Z")
CLI_OPTION = re.compile(r"--[a-z-]+ ")  # the shared checks speak provision's options


def _form_values(form: dict) -> dict:
    return {
        key: str(form.get(key, "")).strip()
        for key in ("name", "tags", "sensors", "interval_s", "wifi_ssid")
    }


def parse_tags(text: str) -> tuple[dict[str, str], list[str]]:
    """'room=east' lines (or room: east) -> metadata; the API checks keys and values."""
    tags, errors = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = TAG_LINE.match(line)
        if not match:
            errors.append(f"tags, line {number}: write key=value, e.g. room=greenhouse")
            continue
        tags[match.group(1)] = match.group(2)
    return tags, errors


def sensor_specs(text: str) -> list[str]:
    return [spec for spec in re.split(r"[\s,]+", text) if spec] or ["simulated"]


def board_settings(values: dict, wifi_password: str):
    """(sensors, interval) for config.json, checked before anything is registered."""
    sensors = [parse_sensor_spec(spec) for spec in sensor_specs(values["sensors"])]
    check_sensor_count(sensors)
    try:
        interval = float(values["interval_s"] or DEFAULT_INTERVAL_S)
    except ValueError:
        raise UsageError(f"interval: {values['interval_s'][:20]!r} is not a number") from None
    check_interval(interval)
    check_wifi(values["wifi_ssid"], wifi_password)
    return sensors, interval


def _form(request: Request, session, values: dict, errors: list[str], status: int = 200):
    return render(
        request, "device_new.html", session, status=status, values=values, errors=errors,
        sensor_help=SENSOR_SPEC_HELP, title="Add a device",
    )  # fmt: skip


@router.get("/devices/new")
async def new_device_form(request: Request, session: SessionDep) -> Response:
    values = {"sensors": "simulated", "interval_s": str(DEFAULT_INTERVAL_S)}
    return _form(request, session, values, [])


@router.post("/devices/new")
async def add_device(request: Request, session: SessionDep, form: FormDep) -> Response:
    values = _form_values(form)
    wifi_password = str(form.get("wifi_password", ""))
    tags, errors = parse_tags(values["tags"])
    try:
        sensors, interval = board_settings(values, wifi_password)
    except UsageError as error:
        errors.append(CLI_OPTION.sub("", str(error)))
    if errors:
        return _form(request, session, values, errors, 422)
    try:
        device = await session.api.post("/devices", {"name": values["name"], "metadata": tags})
    except ApiError as error:
        return _form(request, session, values, error.messages(), 422)
    mqtt = device["mqtt"]
    config = build_config(device["id"], mqtt, sensors, values["wifi_ssid"], wifi_password, interval)
    text = json.dumps(config, indent=2, sort_keys=True)
    command = ["provision", "flash", "--device-id", device["id"], "--port", "/dev/ttyUSB0"]
    for spec in sensor_specs(values["sensors"]):
        command += ["--sensor", spec]
    if interval != DEFAULT_INTERVAL_S:
        command += ["--interval", f"{interval:g}"]
    if values["wifi_ssid"]:
        command += ["--wifi-ssid", values["wifi_ssid"], "--wifi-password-stdin"]
    return render(
        request, "device_created.html", session, status=201, device=device, mqtt=mqtt,
        config_json=text, config_href="data:application/json;charset=utf-8," + quote(text),
        command=shlex.join(command), title=f"{device['name']} is registered",
    )  # fmt: skip
