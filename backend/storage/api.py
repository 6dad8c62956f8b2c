"""storage's internal HTTP API: the gateway's telemetry routes call it with the owner
already checked; mqtt_auth (or an operator) may drop cached device info."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.infra.timeseries import QueryError, TimeSeriesUnavailable
from fieldline_backend.storage.overview import capped_latest, fleet_overview
from fieldline_backend.storage.query_size import check_query_size
from fieldline_backend.storage.status import device_status

MAX_TS_MS = 9_223_372_036_853  # InfluxDB's last millisecond; SQLite's integers hold it

router = APIRouter(prefix="/internal/telemetry", tags=["internal"], dependencies=[InternalOnly])


def _storage(request: Request):
    return request.app.state.ctx.extras["storage"]


@router.get("/devices/{device_id}")
def read_series(
    request: Request,
    device_id: str,
    fields: str = Query(..., description="comma-separated value names"),
    start: int = Query(..., ge=0, le=MAX_TS_MS, description="ms since epoch, inclusive"),
    stop: int = Query(..., ge=0, le=MAX_TS_MS, description="ms since epoch, exclusive"),
    every: int | None = Query(None, gt=0, le=MAX_TS_MS, description="window in ms"),
    agg: str | None = None,
    limit: int | None = Query(None, ge=1, description="values per answer; default the cap"),
) -> dict:
    """At most `limit` values (FIELDLINE_QUERY_MAX_POINTS by default and at most);
    `next_start` is where the rest begins (null: nothing left before stop)."""
    cap = request.app.state.ctx.settings.query_max_points
    names = sorted({name for name in fields.split(",") if name})
    limit = check_query_size(names, start, stop, every, limit, cap)
    try:
        page = _storage(request).store.page([device_id], names, start, stop, limit, every, agg)
    except QueryError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error
    return {
        "device_id": device_id,
        "fields": page.series.get(device_id, {}),
        "limit": limit,
        "next_start": page.next_start,
    }


@router.get("/devices/{device_id}/status")
def read_status(request: Request, device_id: str) -> dict:
    try:
        return device_status(_storage(request).store, device_id, int(time.time() * 1000))
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error


@router.get("/devices/{device_id}/latest")
def read_latest(
    request: Request,
    device_id: str,
    start: int = Query(..., ge=0, le=MAX_TS_MS, description="ms since epoch"),
) -> dict:
    """The newest value of each of the device's fields since start: the first
    FIELDLINE_QUERY_MAX_POINTS fields by name, `truncated` when the device has more."""
    cap = request.app.state.ctx.settings.query_max_points
    try:
        found = _storage(request).store.latest(device_id, start, limit=cap + 1)
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error
    fields, truncated = capped_latest(found, cap)
    return {"device_id": device_id, "fields": fields, "truncated": truncated}


OVERVIEW_MAX_DEVICES = 500  # per call; the gateway asks in slices of this many


class OverviewAsk(BaseModel):
    devices: dict[str, str | None] = Field(max_length=OVERVIEW_MAX_DEVICES)  # id -> main field
    every_ms: int = Field(ge=1000, le=3_600_000)  # the sparklines' window over the last hour


@router.post("/overview")
def read_overview(request: Request, ask: OverviewAsk) -> list[dict]:
    """Each device's row of the fleet overview (storage/overview.py), in the asked order."""
    cap = request.app.state.ctx.settings.query_max_points
    now_ms = int(time.time() * 1000)
    try:
        return fleet_overview(_storage(request).store, ask.devices, now_ms, ask.every_ms, cap)
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error


class Invalidate(BaseModel):
    client_id: str | None = None  # None: forget every cached device


@router.post("/device-cache/invalidate", status_code=204)
def invalidate(request: Request, body: Invalidate) -> None:
    _storage(request).directory.forget(body.client_id)


@router.get("/stats")
def stats(request: Request) -> dict:
    return _storage(request).stats.as_dict()
