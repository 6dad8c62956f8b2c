"""The monitor's internal API: the rule preview (the gateway's public route calls it)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, StrictInt

from fieldline_backend.alerts.client import validated_rule
from fieldline_backend.common.durations import PREVIEW_MAX_PERIOD_MS
from fieldline_backend.common.internal import InternalOnly
from fieldline_backend.monitor.preview import preview

EXTRAS_KEY = "monitor.component"
MAX_PERIOD_MS = PREVIEW_MAX_PERIOD_MS

router = APIRouter(
    prefix="/internal/monitor", tags=["internal: monitor"], dependencies=[InternalOnly]
)


class PreviewRequest(BaseModel):
    owner_id: str
    rule: Any  # alerts validates it (validated_rule) and names the fault
    start_ms: StrictInt  # strict: JSON true is not 1 ms
    stop_ms: StrictInt


@router.post("/preview")
async def preview_rule(request: Request, body: PreviewRequest) -> dict:
    component = request.app.state.ctx.extras[EXTRAS_KEY]
    rule = await validated_rule(request, body.rule)
    if rule["kind"] == "external":
        raise HTTPException(422, "an external rule has no stored data to preview")
    if not 0 < body.stop_ms - body.start_ms <= MAX_PERIOD_MS:
        raise HTTPException(422, "period: give a period of up to 92 days")
    rule["id"] = "preview"
    devices = await component.devices_of(body.owner_id, rule)
    started = time.perf_counter()
    result = await asyncio.to_thread(
        preview, component.store, rule, devices, body.start_ms, body.stop_ms
    )
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result
