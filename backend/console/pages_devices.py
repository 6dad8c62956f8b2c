"""Devices: the list with state and sparklines, one device with its charts, latest
values, metadata and MQTT details, and the two changes that need a confirmation
(new credentials, disable)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response

from fieldline_backend.console import charts
from fieldline_backend.console.api import Api, ApiError
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.fleet_view import fleet_view
from fieldline_backend.console.ranges import PRESETS, RangeInvalid, form_value, pick_range
from fieldline_backend.console.web import (
    FormDep,
    SessionDep,
    compressed_fragment,
    or_not_found,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
SPARK_WIDTH = 120


async def _device_rows(api: Api) -> list[dict]:
    """One call per poll (GET /api/v1/fleet), whatever the number of devices."""
    try:
        fleet = await api.get("/fleet", spark_points=SPARK_WIDTH)
    except ApiError as error:  # the list still shows the devices, each saying why no state
        devices = await api.get("/devices")
        reason = "; ".join(error.messages())
        return [{"device": d, "state": None, "spark": "", "error": reason} for d in devices]
    return [
        {
            "device": row["device"],
            "state": row,
            "spark": charts.sparkline(row["spark"], SPARK_WIDTH) if row["spark"] else "",
            "error": None,
        }
        for row in fleet
    ]


@router.get("/devices")
async def devices_page(request: Request, session: SessionDep) -> Response:
    rows = await _device_rows(session.api)
    return render(request, "devices.html", session, rows=rows, title="Devices")


@router.get("/devices/live")
async def devices_live(request: Request, session: SessionDep) -> Response:
    """The table body alone: the page's script swaps it in every few seconds."""
    rows = await _device_rows(session.api)
    return compressed_fragment(request, render(request, "_device_rows.html", session, rows=rows))


async def _own_device(api: Api, device_id: str) -> dict:
    return await or_not_found(api.get(f"/devices/{device_id}"), "no such device of yours")


async def live_view(api: Api, device: dict, time_range, width: int) -> dict:
    """Status, latest values and one chart per field, each chart at most `width`
    points: the windows are sized to the chart and aggregated by the query API."""
    device_id = device["id"]
    status, latest = await asyncio.gather(
        api.get(f"/devices/{device_id}/status"), api.get(f"/devices/{device_id}/latest")
    )
    fields = latest["fields"]
    start, stop = time_range.start_ms, time_range.stop_ms
    every = charts.window_ms(start, stop, width)
    groups = {
        "mean": [n for n, (_t, v) in fields.items() if not isinstance(v, bool)],
        "last": [n for n, (_t, v) in fields.items() if isinstance(v, bool)],
    }
    series: dict[str, list] = {}
    for agg, names in groups.items():
        if names:
            found = await charts.read_all_pages(
                api, f"/devices/{device_id}/telemetry", fields=",".join(sorted(names)),
                start=start, stop=stop, every=every, agg=agg,
            )  # fmt: skip
            series.update({name: (agg, found.get(name, [])) for name in names})
    drawn = []
    for name in sorted(series):
        agg, points = series[name]
        drawn.append(
            {
                "field": name,
                "agg": agg,
                "chart": charts.draw(
                    points, start, stop, width, every_ms=every, boolean=agg == "last"
                ),
                "unit": charts.unit_for(name, device.get("metadata")),
                "last": points[-1] if points else None,
            }
        )
    return {
        "status": status,
        "latest": sorted(fields.items()),
        "charts": drawn,
        "range": time_range,
        "every": every,
        "width": width,
    }


def _range_or_400(key, start, stop):
    try:
        return pick_range(key, start, stop)
    except RangeInvalid as error:
        raise HTTPException(400, str(error)) from None


@router.get("/devices/{device_id}")
async def device_page(
    request: Request,
    device_id: str,
    session: SessionDep,
    range: str | None = None,
    start: str | None = None,
    stop: str | None = None,
) -> Response:
    return await render_device_page(request, session, device_id, range, start, stop)


async def render_device_page(
    request: Request,
    session,
    device_id: str,
    range: str | None = None,
    start: str | None = None,
    stop: str | None = None,
    status: int = 200,
    **extra,
) -> Response:
    """The device page; `extra` carries a fleet form's errors and values (pages_fleet)."""
    device = await _own_device(session.api, device_id)
    error = None
    try:
        time_range = pick_range(range, start, stop)
    except RangeInvalid as problem:
        error, time_range = str(problem), pick_range("1h", None, None)
    view, fleet = await asyncio.gather(
        live_view(session.api, device, time_range, charts.DEFAULT_WIDTH),
        fleet_view(session.api, device_id),
    )
    mqtt = request.app.state.ctx.settings.device_mqtt_endpoint()
    return render(
        request, "device.html", session, status=status, device=device, view=view, mqtt=mqtt,
        error=error, presets=PRESETS, form_start=form_value(time_range.start_ms),
        form_stop=form_value(time_range.stop_ms), title=device["name"], fleet=fleet, **extra,
    )  # fmt: skip


@router.get("/devices/{device_id}/live")
async def device_live(
    request: Request,
    device_id: str,
    session: SessionDep,
    width: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    range: str | None = None,
    start: str | None = None,
    stop: str | None = None,
) -> Response:
    """The live part of the device page (status, latest values, charts) for the
    page's script; `width` is the chart's width in CSS pixels."""
    device = await _own_device(session.api, device_id)
    time_range = _range_or_400(range, start, stop)
    view = await live_view(session.api, device, time_range, charts.clamp_width(width))
    response = render(request, "_device_live.html", session, device={"id": device_id}, view=view)
    return compressed_fragment(request, response)


# ---- changes that need a confirmation ---------------------------------------------------

ACTIONS = {
    "rotate": ("Make new MQTT credentials",
               "The device's current password stops working at once. You will have to put "
               "the new one on the device (provision it again)."),
    "disable": ("Disable this device",
                "The device is disconnected and cannot connect until you enable it again. "
                "Its data stays."),
    "enable": ("Enable this device", "The device may connect again with its password."),
}  # fmt: skip


@router.get("/devices/{device_id}/{action}")
async def confirm_page(request: Request, device_id: str, action: str, session: SessionDep):
    if action not in ACTIONS:
        raise HTTPException(404, "no such page")
    device = await _own_device(session.api, device_id)
    heading, consequence = ACTIONS[action]
    return render(
        request, "confirm.html", session, title=heading, heading=heading,
        consequence=consequence, subject=device["name"],
        action=f"/devices/{device_id}/{action}", back=f"/devices/{device_id}",
    )  # fmt: skip


@router.post("/devices/{device_id}/{action}")
async def confirmed(
    request: Request, device_id: str, action: str, session: SessionDep, form: FormDep
):
    if action not in ACTIONS:
        raise HTTPException(404, "no such page")
    device = await _own_device(session.api, device_id)
    if action == "rotate":
        answer = await session.api.post(f"/devices/{device_id}/credentials/rotate")
        return render(
            request, "credentials.html", session, device=device, mqtt=answer["mqtt"],
            title="New MQTT credentials",
        )  # fmt: skip
    enabled = action == "enable"
    await session.api.patch(f"/devices/{device_id}", {"enabled": enabled})
    return redirect(f"/devices/{device_id}", "device-enabled" if enabled else "device-disabled")
