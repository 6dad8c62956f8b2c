"""Alert history with filters, and the user's personal API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from fieldline_backend.common.numbers import ascii_int
from fieldline_backend.console.api import ApiError
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.ranges import RangeInvalid, parse_moment
from fieldline_backend.console.web import (
    FormDep,
    Session,
    SessionDep,
    compressed_fragment,
    or_not_found,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
LEVELS = ("crit", "warn", "info", "ok")


async def _history(session: Session, filters: dict) -> tuple[list, str | None]:
    params: dict = {"limit": 200}
    for key in ("device_id", "rule_id"):
        if filters.get(key):
            params[key] = filters[key]
    try:
        for key in ("since", "until"):
            if filters.get(key):
                params[key] = parse_moment(filters[key], key)
    except RangeInvalid as error:
        return [], str(error)
    levels = [level for level in filters.get("level", []) if level in LEVELS]
    try:
        return await session.api.get("/alerts", level=levels, **params), None
    except ApiError as error:
        if error.status >= 500:
            raise  # a 503 page: the alerts service is down
        return [], "; ".join(error.messages())


def _filters(device_id, rule_id, level, since, until) -> dict:
    return {
        "device_id": device_id or "",
        "rule_id": rule_id or "",
        "level": level or [],
        "since": since or "",
        "until": until or "",
    }


@router.get("/alerts")
async def alerts_page(
    request: Request,
    session: SessionDep,
    device_id: str | None = None,
    rule_id: str | None = None,
    level: Annotated[list[str] | None, Query()] = None,
    since: str | None = None,
    until: str | None = None,
    live: bool = False,
) -> Response:
    filters = _filters(device_id, rule_id, level, since, until)
    alerts, error = await _history(session, filters)
    if live:  # the page's script asks for the table alone
        return compressed_fragment(
            request, render(request, "_alert_rows.html", session, alerts=alerts)
        )
    devices = await session.api.get("/devices")
    rules = await session.api.get("/alert-rules")
    return render(
        request, "alerts.html", session, alerts=alerts, error=error, filters=filters,
        devices=devices, rules=rules, levels=LEVELS, title="Alert history",
    )  # fmt: skip


@router.get("/tokens")
async def tokens_page(request: Request, session: SessionDep) -> Response:
    tokens = await session.api.get("/tokens")
    return render(request, "tokens.html", session, tokens=tokens, title="API tokens")


@router.post("/tokens")
async def create_token(request: Request, session: SessionDep, form: FormDep) -> Response:
    body: dict = {"name": str(form.get("name", "")).strip()}
    days = str(form.get("expires_in_days", "")).strip()
    errors = []
    if days:
        number = ascii_int(days, signed=False)  # "²".isdigit() is true, int("²") fails
        if number is not None:
            body["expires_in_days"] = number
        else:
            errors.append(f"expires in days: {days[:20]!r} is not a whole number")
    created = None
    if not errors:
        try:
            created = await session.api.post("/tokens", body)
        except ApiError as error:
            errors = error.messages()
    tokens = await session.api.get("/tokens")
    return render(
        request, "tokens.html", session, status=422 if errors else 201, tokens=tokens,
        created=created, errors=errors, title="API tokens",
    )  # fmt: skip


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, session: SessionDep, form: FormDep):
    await or_not_found(session.api.delete(f"/tokens/{token_id}"), "no such token of yours")
    return redirect("/tokens", "token-revoked")
