"""Alert rules of the signed-in user: create, list, read, change, delete, preview what
a rule would have sent, and send a test. Another user's rule answers 404; a rule can
only name the user's own devices."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Request, Response

from fieldline_backend.alerts.client import call, load_json, passthrough
from fieldline_backend.common.durations import PREVIEW_MAX_PERIOD_MS, parse_duration
from fieldline_backend.common.numbers import ascii_int
from fieldline_backend.common.times import TimeInvalid, parse_time_ms
from fieldline_backend.devices.client import DeviceNotFound, DevicesClientDep
from fieldline_backend.gateway.auth import CurrentUser

router = APIRouter(
    prefix="/api/v1/alert-rules",
    tags=["alerts"],
    responses={401: {"description": "not signed in"}},
)

RULE_EXAMPLE = {
    "name": "too hot",
    "device_id": "dev-abcdefghijkl",
    "field": "temperature",
    "condition": "above",
    "warn": 25,
    "crit": 30,
    "clear": 28,
    "for": "5m",
    "recipients": ["ops@example.com"],
    "repeat_every": "1h",
    "notify_on_recovery": True,
}
RuleBody = Annotated[Any, Body(examples=[RULE_EXAMPLE])]


def invalid(field: str, message: str, prefix: tuple = ("body",)) -> HTTPException:
    return HTTPException(
        422, detail=[{"loc": [*prefix, field], "msg": message, "type": "value_error"}]
    )


def _rule_path(rule_id: str, tail: str = "") -> str:
    # Quoted: an id is whatever the caller typed (control characters make no valid URL).
    return f"/internal/alert-rules/{quote(rule_id, safe='')}{tail}"


MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _preview_time(value: Any, name: str) -> int:
    """A preview's start/stop: epoch ms (a JSON number or ASCII digits, like every other
    time in this API) or RFC 3339; a 422 naming the field otherwise."""
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = int(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        number = ascii_int(value.strip())
    try:
        stamp = number if number is not None else parse_time_ms(value, name)
    except TimeInvalid as error:
        raise invalid(name, f"give epoch ms or an RFC 3339 time ({error})") from None
    if not 0 <= stamp <= MAX_TIME_MS:
        raise invalid(name, "must lie between 1970 and the year 9999")
    return stamp


async def _own_device(devices, device_id, user, prefix=("body",)) -> None:
    """A rule may name only the caller's devices (another's is 'not among yours')."""
    if isinstance(device_id, str):
        try:
            await devices.get(device_id, user.id)
        except DeviceNotFound:
            raise invalid(
                "device_id", f"no device {device_id[:80]!r} among yours", prefix
            ) from None


@router.post("", status_code=201)
async def create_rule(
    request: Request, body: RuleBody, user: CurrentUser, devices: DevicesClientDep
):
    """Create a rule (threshold, deadman or external). 422 names the field at fault."""
    if isinstance(body, bytes):  # not sent as application/json: read it as alerts would
        body = load_json(body)
    if isinstance(body, dict):  # else alerts names what is wrong
        await _own_device(devices, body.get("device_id"), user)
    response = await call(
        request, "alerts", "POST", "/internal/alert-rules", params={"owner_id": user.id}, json=body
    )
    return passthrough(response)


@router.get("")
async def list_rules(request: Request, user: CurrentUser):
    response = await call(
        request, "alerts", "GET", "/internal/alert-rules", params={"owner_id": user.id}
    )
    return passthrough(response)


@router.post("/preview")
async def preview_rule(
    request: Request, body: Annotated[Any, Body()], user: CurrentUser, devices: DevicesClientDep
):
    """How many notifications a rule would have sent, and when, over a past period:
    `{"rule": {...}, "period": "7d"}` (or `"start"`/`"stop"` times; or `"rule_id"`)."""
    if not isinstance(body, dict):
        raise invalid("body", 'send {"rule": {...}, "period": "7d"}')
    rule = body.get("rule")
    if rule is None and isinstance(body.get("rule_id"), str):
        found = await call(
            request, "alerts", "GET", _rule_path(body["rule_id"]),
            params={"owner_id": user.id},
        )  # fmt: skip
        if found.status_code != 200:
            return passthrough(found)
        hidden = ("id", "owner_id", "created_at", "updated_at")
        rule = {k: v for k, v in found.json().items() if k not in hidden and v is not None}
    now = int(time.time() * 1000)
    stop = _preview_time(body["stop"], "stop") if body.get("stop") is not None else now
    if body.get("start") is not None:
        start = _preview_time(body["start"], "start")
    else:
        try:
            start = stop - int(parse_duration(body.get("period", "7d")) * 1000)
        except ValueError as error:
            raise invalid("period", str(error)) from None
    if not 0 < stop - start <= PREVIEW_MAX_PERIOD_MS:  # the monitor's bound, named by our fields
        field = "start" if body.get("start") is not None else "period"
        raise invalid(field, f"{field}: give a period of up to 92 days, ending at stop")
    if isinstance(rule, dict):  # the monitor has alerts validate it, and names the fault
        await _own_device(devices, rule.get("device_id"), user, ("body", "rule"))
    response = await call(
        request, "monitor", "POST", "/internal/monitor/preview",
        json={"owner_id": str(user.id), "rule": rule, "start_ms": start, "stop_ms": stop},
    )  # fmt: skip
    return passthrough(response)


@router.get("/{rule_id}")
async def get_rule(request: Request, rule_id: str, user: CurrentUser):
    response = await call(
        request, "alerts", "GET", _rule_path(rule_id), params={"owner_id": user.id}
    )
    return passthrough(response)


@router.patch("/{rule_id}")
async def change_rule(
    request: Request, rule_id: str, body: RuleBody, user: CurrentUser, devices: DevicesClientDep
):
    """Change some fields of a rule; the result is validated as a whole."""
    if not isinstance(body, dict):
        raise invalid("body", "send a JSON object with the fields to change")
    await _own_device(devices, body.get("device_id"), user)
    response = await call(
        request, "alerts", "PATCH", _rule_path(rule_id),
        params={"owner_id": user.id}, json=body,
    )  # fmt: skip
    return passthrough(response)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(request: Request, rule_id: str, user: CurrentUser) -> Response:
    response = await call(
        request,
        "alerts",
        "DELETE",
        _rule_path(rule_id),
        params={"owner_id": user.id},
    )
    return passthrough(response)


@router.post("/{rule_id}/test", status_code=202)
async def test_rule(request: Request, rule_id: str, user: CurrentUser):
    """Send a test notification to the rule's recipients now."""
    response = await call(
        request, "alerts", "POST", _rule_path(rule_id, "/test"),
        params={"owner_id": user.id},
    )  # fmt: skip
    return passthrough(response)
