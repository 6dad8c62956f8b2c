"""The alerts service's internal HTTP API (the gateway's public routes call it with
the owner made explicit; the monitor posts its check results here)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from fieldline_backend.alerts.payloads import (
    PayloadInvalid,
    parse_influxdb,
    parse_kapacitor,
    parse_time_ms,
)
from fieldline_backend.alerts.rules import LEVELS, RuleInvalid, validate_rule
from fieldline_backend.alerts.service import AlertService, RuleNotFound
from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.common.numbers import ascii_int

EXTRAS_KEY = "alerts.service"
MAX_BATCH = 10000

router = APIRouter(prefix="/internal", tags=["internal: alerts"], dependencies=[InternalOnly])


def service_of(request: Request) -> AlertService:
    return request.app.state.ctx.extras[EXTRAS_KEY]


def rule_invalid(error: RuleInvalid, at: tuple[str, ...] = ("body",)) -> HTTPException:
    return HTTPException(
        422,
        detail=[{"loc": [*at, error.field], "msg": error.message, "type": "value_error"}],
    )


def not_found(rule_id: str) -> HTTPException:
    return HTTPException(
        404,
        f"no alert rule {rule_id[:80]!r} among yours; list them with GET /api/v1/alert-rules",
    )


# The monitor posts its notifications in batches: more than the 1 MiB default body limit.
BATCH_BODY_BYTES = 8 * 1024 * 1024


async def json_body(request: Request) -> Any:
    raw = await request.body()  # at most BATCH_BODY_BYTES (the route's max_body_size)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(422, f"the body is not JSON: {error}") from None


MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def time_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = ascii_int(value.strip())  # ASCII only: "²".isdigit() is true, int() fails
        stamp = number if number is not None else parse_time_ms(value, name)
    except PayloadInvalid as error:
        raise HTTPException(
            422, f"{name}: give epoch milliseconds or an RFC 3339 time ({error})"
        ) from None
    if abs(stamp) > MAX_TIME_MS:  # no database column holds more; nobody means it
        raise HTTPException(422, f"{name}: {value[:40]!r} is out of range (up to year 9999)")
    return stamp


@router.post("/alert-rules", status_code=201)
async def create_rule(request: Request, owner_id: str) -> dict:
    body = await json_body(request)
    try:
        return service_of(request).create_rule(owner_id, body)
    except RuleInvalid as error:
        raise rule_invalid(error) from None


@router.post("/alert-rules/validate")
async def check_rule(request: Request) -> dict:
    """The normal form of `{"rule": {...}}`, or a 422 naming `body.rule.<field>`: how the
    gateway and the monitor have a rule validated by its owner (alerts.client)."""
    body = await json_body(request)
    if not isinstance(body, dict) or "rule" not in body:
        raise HTTPException(422, detail=[{"loc": ["body", "rule"], "msg": 'send {"rule": {...}}'}])
    try:
        return validate_rule(body["rule"])
    except RuleInvalid as error:
        raise rule_invalid(error, ("body", "rule")) from None


@router.get("/alert-rules")
def list_rules(request: Request, owner_id: str | None = None, enabled: bool | None = None):
    return service_of(request).list_rules(owner_id, enabled)


@router.get("/alert-rules/{rule_id}")
def get_rule(request: Request, rule_id: str, owner_id: str) -> dict:
    try:
        return service_of(request).get_rule(rule_id, owner_id)
    except RuleNotFound:
        raise not_found(rule_id) from None


@router.patch("/alert-rules/{rule_id}")
async def change_rule(request: Request, rule_id: str, owner_id: str) -> dict:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": "send a JSON object"}])
    try:
        return service_of(request).change_rule(rule_id, owner_id, body)
    except RuleNotFound:
        raise not_found(rule_id) from None
    except RuleInvalid as error:
        raise rule_invalid(error) from None


@router.delete("/alert-rules/{rule_id}", status_code=204)
def delete_rule(request: Request, rule_id: str, owner_id: str) -> Response:
    try:
        service_of(request).delete_rule(rule_id, owner_id)
    except RuleNotFound:
        raise not_found(rule_id) from None
    return Response(status_code=204)


@router.post("/alert-rules/{rule_id}/test", status_code=202)
def test_rule(request: Request, rule_id: str, owner_id: str) -> dict:
    try:
        return service_of(request).send_test(rule_id, owner_id)
    except RuleNotFound:
        raise not_found(rule_id) from None


@router.get("/alerts")
def list_alerts(
    request: Request,
    owner_id: str,
    device_id: str | None = None,
    rule_id: str | None = None,
    level: Annotated[list[str] | None, Query()] = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    for item in level or []:
        if item not in LEVELS:
            raise HTTPException(422, f"level: {item!r} is not one of {', '.join(LEVELS)}")
    return service_of(request).history(
        owner_id,
        device_id=device_id,
        rule_id=rule_id,
        levels=level or (),
        since_ms=time_param(since, "since"),
        until_ms=time_param(until, "until"),
        limit=limit,
    )


@router.get("/alert-states/standing")
def standing_states(request: Request) -> list[dict]:
    return service_of(request).standing()


@router.get("/alert-states")
def list_states(request: Request, owner_id: str, rule_id: str | None = None) -> list[dict]:
    return service_of(request).states(owner_id, rule_id)


def _batch(body: Any) -> list:
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_BATCH:
        raise HTTPException(422, f"send one notification or a list of 1 to {MAX_BATCH}")
    return items


def _parsed(parse, items: list, *args) -> list:
    found = []
    for index, item in enumerate(items):
        try:
            found.append(parse(item, *args))
        except PayloadInvalid as error:
            where = f"item {index}: " if len(items) > 1 else ""
            raise HTTPException(422, f"{where}{error}") from None
    return found


async def _receive(request: Request, notifications: list) -> dict:
    import asyncio

    results = await asyncio.to_thread(service_of(request).receive, notifications)
    unknown = [r for r in results if r.get("error")]
    if unknown and len(unknown) == len(results):
        raise HTTPException(
            422,
            f"no alert rule {unknown[0]['rule_id']!r}: send the id of a Fieldline rule as "
            "_check_id or as ?rule_id=",
        )
    return {"accepted": len(results) - len(unknown), "results": results}


@router.post("/notifications/influxdb", max_body_size=BATCH_BODY_BYTES)
async def influxdb_notification(request: Request, rule_id: str | None = None) -> dict:
    items = _batch(await json_body(request))
    return await _receive(request, _parsed(parse_influxdb, items, rule_id))


@router.post("/notifications/kapacitor", max_body_size=BATCH_BODY_BYTES)
async def kapacitor_notification(request: Request, rule_id: str | None = None) -> dict:
    if not rule_id:
        raise HTTPException(
            422, "rule_id: name the Fieldline rule that receives Kapacitor's alerts (?rule_id=)"
        )
    items = _batch(await json_body(request))
    return await _receive(request, _parsed(parse_kapacitor, items, rule_id))
