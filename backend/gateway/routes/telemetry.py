"""A device's telemetry and status, for its owner: raw points, windowed aggregates, CSV.

Times (`start`, `stop`) are ms since the epoch, RFC 3339 (`2026-11-26T12:00:00Z`) or
relative to now (`-1h`, `-30m`, `-15s`, `-7d`, `now`); `every` is a duration (`1m`,
`30s`) or ms. Another user's device answers 404 like a missing one. The points come
from the storage service (`/internal/telemetry/...`).
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from fieldline_backend.common.numbers import ascii_int
from fieldline_backend.devices.client import DevicesClientDep
from fieldline_backend.gateway.auth import CurrentUser
from fieldline_backend.gateway.storage_calls import storage_get

router = APIRouter(
    prefix="/api/v1/devices",
    tags=["telemetry"],
    responses={401: {"description": "not signed in"}, 404: {"description": "no such device"}},
)

AGGREGATES = ("mean", "min", "max", "last", "count")
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
DURATION = re.compile(r"([0-9]{1,20})(ms|s|m|h|d|w)", re.ASCII)  # fullmatch
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MAX_TS_MS = 9_223_372_036_853  # the last millisecond InfluxDB can hold (2262)
MAX_EVERY_MS = 366 * 86_400_000


def _bad(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def parse_duration_ms(text: str, what: str) -> int:
    text = text.strip()
    value = ascii_int(text, signed=False)
    if value is None:
        match = DURATION.fullmatch(text)
        if not match:
            raise _bad(f"{what} {text[:40]!r} is not a duration; use e.g. 500ms, 30s, 5m, 1h, 1d")
        value = int(match.group(1)) * UNIT_MS[match.group(2)]
    if value <= 0:
        raise _bad(f"{what} must be longer than 0")
    if value > MAX_TS_MS:
        raise _bad(f"{what} {text[:40]!r} is longer than any time range")
    return value


def parse_time_ms(text: str, now_ms: int, what: str) -> int:
    value = _time_ms(text.strip(), now_ms, what)
    if not 0 <= value <= MAX_TS_MS:
        raise _bad(f"{what} must lie between 1970 and 2262")
    return value


def _time_ms(text: str, now_ms: int, what: str) -> int:
    if text == "now":
        return now_ms
    if text.startswith("-"):
        return now_ms - parse_duration_ms(text[1:], what)
    number = ascii_int(text, signed=False)
    if number is not None:
        return number
    if not text.isascii():  # fromisoformat takes any character between date and time
        raise _bad(f"{what} {text[:40]!r} is not a time; use ms since epoch or RFC 3339")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        stamp = int(moment.timestamp() * 1000) if moment.tzinfo else None
    except (ValueError, OverflowError, OSError):
        raise _bad(
            f"{what} {text[:40]!r} is not a time; use ms since epoch, RFC 3339 "
            "(2026-11-26T12:00:00Z) or relative (-1h)"
        ) from None
    if stamp is None:
        raise _bad(f"{what} {text[:40]!r} needs a time zone, e.g. a trailing Z for UTC")
    return stamp


def _value_names(fields: str) -> list[str]:
    names = [name.strip() for name in fields.split(",") if name.strip()]
    if not names:
        raise _bad("name at least one value in fields, e.g. fields=temperature,humidity")
    for name in names:
        if not FIELD.match(name):
            raise _bad(f"field {name[:80]!r} is not a value name ([A-Za-z_][A-Za-z0-9_]*)")
    return names


def _window(agg: str | None, every: str | None, limit: int | None) -> dict[str, int | str]:
    """The aggregation and size parameters of a read, checked (after start/stop)."""
    if agg is not None and agg not in AGGREGATES:
        raise _bad(f"agg {agg[:40]!r} is not one of {', '.join(AGGREGATES)}")
    every_ms = parse_duration_ms(every, "every") if every else None
    if every_ms and every_ms > MAX_EVERY_MS:
        raise _bad("every may be at most a year (366d)")
    if every_ms and agg is None:
        raise _bad("every needs agg (mean, min, max, last or count)")
    params: dict[str, int | str] = {}
    if agg:
        params["agg"] = agg
    if every_ms:
        params["every"] = every_ms
    if limit is not None:
        params["limit"] = limit
    return params


@router.get("/{device_id}/telemetry")
async def read_telemetry(
    request: Request,
    device_id: str,
    user: CurrentUser,
    devices: DevicesClientDep,
    fields: Annotated[str, Query(description="comma-separated value names")],
    start: Annotated[str, Query(description="ms, RFC 3339 or relative like -1h")] = "-1h",
    stop: Annotated[str, Query(description="ms, RFC 3339, relative or now")] = "now",
    every: Annotated[str | None, Query(description="window: 30s, 5m, 1h or ms")] = None,
    agg: Annotated[str | None, Query(description="mean, min, max, last or count")] = None,
    limit: Annotated[
        int | None, Query(ge=1, description="values per answer (default and most: the cap)")
    ] = None,
    accept: Annotated[str | None, Header()] = None,
):
    """Points of the named values: `{"device_id", "fields": {name: [[ts_ms, value], ...]},
    "limit", "truncated", "next_start"}`; with `agg` (and `every`), one value per window
    stamped with the window's start. At most `limit` values (FIELDLINE_QUERY_MAX_POINTS):
    a longer answer is cut between two timestamps, `truncated` is true and the same query
    with start=next_start (and this stop) gives the rest, as the `Link: rel="next"`
    header says. `Accept: text/csv` gives a table with one row per timestamp."""
    await devices.get(device_id, user.id)
    names = _value_names(fields)
    now_ms = int(time.time() * 1000)
    start_ms = parse_time_ms(start, now_ms, "start")
    stop_ms = parse_time_ms(stop, now_ms, "stop")
    if stop_ms <= start_ms:
        raise _bad("stop must be later than start")
    params = {"fields": ",".join(names), "start": start_ms, "stop": stop_ms}
    params.update(_window(agg, every, limit))
    body = await storage_get(request, f"/internal/telemetry/devices/{device_id}", params)
    series = {name: body["fields"].get(name, []) for name in names}
    next_start = body["next_start"]
    headers = {}
    if next_start is not None:
        # The rest: this query from next_start to the same (now absolute) stop.
        rest = request.url.include_query_params(start=next_start, stop=stop_ms)
        headers["Link"] = f'<{rest.path}?{rest.query}>; rel="next"'
    if accept and "text/csv" in accept:
        return Response(content=as_csv(names, series), media_type="text/csv", headers=headers)
    answer = {
        "device_id": device_id,
        "fields": series,
        "limit": body["limit"],
        "truncated": next_start is not None,
        "next_start": next_start,
    }
    return JSONResponse(answer, headers=headers)


def as_csv(names: list[str], series: dict[str, list]) -> str:
    rows: dict[int, dict[str, object]] = {}
    for name in names:
        for ts, value in series[name]:
            rows.setdefault(ts, {})[name] = value
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts_ms", "time", *names])
    for ts in sorted(rows):
        iso = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
        writer.writerow([ts, iso, *(_cell(rows[ts].get(name)) for name in names)])
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


@router.get("/{device_id}/latest")
async def read_latest(
    request: Request,
    device_id: str,
    user: CurrentUser,
    devices: DevicesClientDep,
    start: Annotated[str, Query(description="ms, RFC 3339 or relative like -30d")] = "-30d",
) -> dict:
    """The device's fields and the newest value of each since start:
    `{"device_id", "fields": {name: [ts_ms, value]}, "truncated"}` (how a client learns
    the names): at most FIELDLINE_QUERY_MAX_POINTS fields, the first by name;
    `truncated` is true when the device has more."""
    await devices.get(device_id, user.id)
    start_ms = parse_time_ms(start, int(time.time() * 1000), "start")
    return await storage_get(
        request, f"/internal/telemetry/devices/{device_id}/latest", {"start": start_ms}
    )


@router.get("/{device_id}/status")
async def read_status(
    request: Request, device_id: str, user: CurrentUser, devices: DevicesClientDep
) -> dict:
    """online/offline, last_seen (ms), readings in the last hour, and completeness over the
    last hour and day: readings missing by seq per boot, and those the device reported
    dropping from its buffer."""
    await devices.get(device_id, user.id)
    return await storage_get(request, f"/internal/telemetry/devices/{device_id}/status")
