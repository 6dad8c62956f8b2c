"""The gateway's calls to the storage service's internal API: its answers turned into the
public API's (its 400 and 422 pass through with their message; anything else is a 503
to retry)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import HTTPException, Request


async def storage_call(
    request: Request, method: str, path: str, params: dict | None = None, body: Any = None
) -> Any:
    ctx = request.app.state.ctx
    try:
        async with ctx.service_client("storage", timeout=30) as client:
            response = await client.request(method, path, params=params, json=body)
    except httpx.HTTPError as error:
        raise HTTPException(
            503, f"the storage service is unreachable ({error!r}); retry"
        ) from error
    if response.status_code == 400:
        detail = response.json().get("detail", "the store refused the query")
        raise HTTPException(400, detail)
    if response.status_code == 422:  # a query over the size limits; names the parameter
        raise HTTPException(422, response.json()["detail"])
    if response.status_code != 200:
        raise HTTPException(503, f"the storage service answered {response.status_code}; retry")
    return response.json()


async def storage_get(request: Request, path: str, params: dict | None = None) -> Any:
    return await storage_call(request, "GET", path, params=params)
