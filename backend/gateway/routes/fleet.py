"""The signed-in user's fleet at a glance: every device with its state, the last hour's
completeness, its newest values and a sparkline, in one answer (the console's devices list
polls it; three calls per device did not scale past a few dozen)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, StringConstraints

from fieldline_backend.common.windows import window_ms
from fieldline_backend.devices.client import DevicesClientDep
from fieldline_backend.devices.schemas import Device, parse_tags
from fieldline_backend.gateway.auth import CurrentUser
from fieldline_backend.gateway.storage_calls import storage_call

router = APIRouter(
    prefix="/api/v1/fleet", tags=["telemetry"], responses={401: {"description": "not signed in"}}
)
TagFilter = Annotated[str, StringConstraints(pattern=r"^[^:]+:")]  # as parse_tags reads it
SLICE = 500  # devices per call to storage (its limit)
HOUR_MS = 3_600_000


class Completeness(BaseModel):
    received: int
    missing: int
    device_dropped: int
    ratio: float | None
    boots: int


class FleetRow(BaseModel):
    device: Device
    status: Literal["online", "offline"]
    last_seen: int | None  # ms
    readings_last_hour: int
    completeness_last_hour: Completeness
    latest: dict[str, list[int | float | bool]]  # name -> [ts_ms, value], since 30 days
    latest_truncated: bool
    main_field: str | None  # metadata main_field if it has values, else the first numeric
    spark: list[list[int | float]]  # [window start ms, mean] of main_field over the last hour


def _preferred(device: Device) -> str | None:
    wanted = device.metadata.get("main_field")
    return wanted if isinstance(wanted, str) else None


@router.get("")
async def fleet(
    request: Request,
    user: CurrentUser,
    devices: DevicesClientDep,
    tag: Annotated[
        list[TagFilter], Query(description="key:value, repeatable; all must match")
    ] = [],  # noqa: B006 - FastAPI query default
    spark_points: Annotated[int, Query(ge=2, le=1000, description="sparkline windows")] = 120,
) -> list[FleetRow]:
    """Your devices (oldest first, filtered by tag like GET /devices), each with what a
    fleet table shows. At most FIELDLINE_QUERY_MAX_POINTS newest values per device."""
    mine = await devices.list(user.id, parse_tags(tag))
    now_ms = int(time.time() * 1000)
    every = window_ms(now_ms - HOUR_MS, now_ms, spark_points)
    rows: list[FleetRow] = []
    for first in range(0, len(mine), SLICE):
        part = mine[first : first + SLICE]
        ask = {"devices": {d.id: _preferred(d) for d in part}, "every_ms": every}
        found = await storage_call(request, "POST", "/internal/telemetry/overview", body=ask)
        rows += [FleetRow(device=d, **row) for d, row in zip(part, found, strict=True)]
    return rows
