"""ingestor's internal API: what this replica forwarded (load sharing, operations)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fieldline_backend.common.internal import InternalOnly

router = APIRouter(prefix="/internal/ingestor", tags=["internal"], dependencies=[InternalOnly])


@router.get("/stats")
def stats(request: Request) -> dict:
    component = request.app.state.ctx.extras.get("ingestor")
    forwarder = component.forwarder if component else None
    publisher = component.publisher if component else None
    return {
        "connected": bool(forwarder and forwarder.connected.is_set()),
        "forwarded": forwarder.forwarded if forwarder else 0,
        "confirmed": getattr(publisher, "confirmed", None),
    }
