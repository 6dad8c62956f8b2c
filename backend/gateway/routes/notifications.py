"""Where a real InfluxDB 2 or Kapacitor posts its alerts, so they drive Fieldline's
mails: `POST /api/v1/notifications/influxdb` (the HTTP notification-endpoint JSON) and
`POST /api/v1/notifications/kapacitor` (the alert `post` handler's JSON), each with its
own secret, sent as `Authorization: Bearer <secret>` (or Basic auth with the secret as
password, or an `X-Fieldline-Secret` header). `?rule_id=` names the Fieldline rule
(kind external) whose recipients get the mails; for InfluxDB 2 a `_check_id` that is a
rule id works too."""

from __future__ import annotations

import base64
import hmac

from fastapi import APIRouter, HTTPException, Request

from fieldline_backend.alerts.client import call, notify_secret, passthrough
from fieldline_backend.gateway.auth import AdminUser

router = APIRouter(prefix="/api/v1/notifications", tags=["alerts"])

ENDPOINTS = ("influxdb", "kapacitor")


def presented_secret(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.headers.get("x-fieldline-secret", "")


def require_secret(request: Request, endpoint: str) -> None:
    expected = notify_secret(request.app.state.ctx.settings, endpoint)
    given = presented_secret(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            f"missing or wrong secret for the {endpoint} endpoint: send "
            "'Authorization: Bearer <secret>' (an admin sees it at "
            "GET /api/v1/notifications/endpoints)",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def _forward(request: Request, endpoint: str):
    require_secret(request, endpoint)
    raw = await request.body()
    if len(raw) > 8 * 1024 * 1024:
        raise HTTPException(413, "body over 8 MiB")
    params = {}
    if request.query_params.get("rule_id"):
        params["rule_id"] = request.query_params["rule_id"]
    response = await call(
        request, "alerts", "POST", f"/internal/notifications/{endpoint}",
        params=params, content=raw, headers={"content-type": "application/json"},
    )  # fmt: skip
    return passthrough(response)


@router.post("/influxdb")
async def influxdb(request: Request):
    """One InfluxDB 2 notification (or a list of them)."""
    return await _forward(request, "influxdb")


@router.post("/kapacitor")
async def kapacitor(request: Request):
    """One Kapacitor alert; `?rule_id=` names the receiving rule."""
    return await _forward(request, "kapacitor")


@router.get("/endpoints")
async def endpoints(request: Request, user: AdminUser) -> dict:
    """For admins: the URLs and secrets to configure in InfluxDB 2 or Kapacitor."""
    settings = request.app.state.ctx.settings
    base = (settings.public_url or settings.http_base_url).rstrip("/")
    return {
        name: {
            "url": f"{base}/api/v1/notifications/{name}",
            "secret": notify_secret(settings, name),
        }
        for name in ENDPOINTS
    }
