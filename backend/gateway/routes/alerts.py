"""The signed-in user's alert history: every notification sent, newest first,
filterable by device, rule, level and time, with each recipient's delivery status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from fieldline_backend.alerts.client import call, passthrough
from fieldline_backend.gateway.auth import CurrentUser

router = APIRouter(
    prefix="/api/v1/alerts",
    tags=["alerts"],
    responses={401: {"description": "not signed in"}},
)


@router.get("")
async def list_alerts(
    request: Request,
    user: CurrentUser,
    device_id: str | None = None,
    rule_id: str | None = None,
    level: Annotated[list[str] | None, Query(description="ok, info, warn, crit")] = None,
    since: Annotated[str | None, Query(description="epoch ms or RFC 3339")] = None,
    until: Annotated[str | None, Query(description="epoch ms or RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    params: list[tuple[str, str | int]] = [("owner_id", user.id), ("limit", limit)]
    for key, value in (
        ("device_id", device_id),
        ("rule_id", rule_id),
        ("since", since),
        ("until", until),
    ):
        if value is not None:
            params.append((key, value))
    params += [("level", item) for item in level or []]
    return passthrough(await call(request, "alerts", "GET", "/internal/alerts", params=params))


@router.get("/states")
async def list_states(request: Request, user: CurrentUser, rule_id: str | None = None):
    """Where each (rule, device) stands now."""
    params: dict = {"owner_id": user.id}
    if rule_id:
        params["rule_id"] = rule_id
    return passthrough(
        await call(request, "alerts", "GET", "/internal/alert-states", params=params)
    )
