"""storage's internal HTTP API: the gateway's telemetry routes call it with the owner
already checked; mqtt_auth (or an operator) may drop cached device info."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.infra.timeseries import QueryError, TimeSeriesUnavailable
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
) -> dict:
    names = [name for name in fields.split(",") if name]
    try:
        series = _storage(request).store.query([device_id], names, start, stop, every, agg)
    except QueryError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error
    return {"device_id": device_id, "fields": series.get(device_id, {})}


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
    """The newest value of each of the device's fields since start."""
    try:
        found = _storage(request).store.latest(device_id, start)
    except TimeSeriesUnavailable as error:
        raise HTTPException(status_code=503, detail=f"{error}; try again shortly") from error
    return {"device_id": device_id, "fields": {k: list(v) for k, v in found.items()}}


class Invalidate(BaseModel):
    client_id: str | None = None  # None: forget every cached device


@router.post("/device-cache/invalidate", status_code=204)
def invalidate(request: Request, body: Invalidate) -> None:
    _storage(request).directory.forget(body.client_id)


@router.get("/stats")
def stats(request: Request) -> dict:
    return _storage(request).stats.as_dict()
