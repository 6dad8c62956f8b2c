"""The alerts service's client: how the gateway and the monitor reach alerts (and the
gateway the monitor): one HTTP client per call, answers passed through, outages as a 503
that says so, and a rule validated by alerts alone (validated_rule)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, Response

from fieldline_backend.common.settings import Settings


async def call(request: Request, service: str, method: str, path: str, **kwargs) -> httpx.Response:
    # A client per call: these routes are low-rate, and nothing is left open when the
    # gateway runs without the alerts service in its process.
    try:
        async with request.app.state.ctx.service_client(service, timeout=60) as client:
            return await client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise HTTPException(
            503,
            f"the {service} service is unavailable ({type(error).__name__}); try again shortly",
            headers={"Retry-After": "5"},
        ) from None


def passthrough(response: httpx.Response) -> Response:
    if response.status_code >= 500:
        raise HTTPException(503, "the alerts service failed; try again shortly")
    if response.status_code == 204:
        return Response(status_code=204)
    try:
        content = response.json()
    except ValueError:
        content = {"detail": response.text[:500]}
    return JSONResponse(status_code=response.status_code, content=content)


async def validated_rule(request: Request, rule: Any) -> dict:
    """The normal form of a rule as alerts, its owner, validates it; alerts' 422 (naming
    `body.rule.<field>`) is raised as it came, for the caller to pass through."""
    response = await call(
        request, "alerts", "POST", "/internal/alert-rules/validate", json={"rule": rule}
    )
    if response.status_code == 200:
        return response.json()
    if response.status_code >= 500:
        passthrough(response)  # raises the 503
    raise HTTPException(response.status_code, detail=response.json().get("detail"))


def load_json(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(422, f"the body is not JSON: {error}") from None


def notify_secret(settings: Settings, endpoint: str) -> str:
    """The secret a notification endpoint requires: configured, else made once and
    kept in the data dir (FIELDLINE_NOTIFY_<ENDPOINT>_SECRET overrides)."""
    configured = getattr(settings, f"notify_{endpoint}_secret", None)
    if configured:
        if configured.strip().lower() in ("changeme", "change-me", "secret", "password"):
            raise ValueError(
                f"FIELDLINE_NOTIFY_{endpoint.upper()}_SECRET is a placeholder; set a random value"
            )
        return configured
    return settings.persistent_secret(f"notify_{endpoint}")
