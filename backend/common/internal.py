"""Service-to-service calls: /internal routes require the shared internal token."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request

INTERNAL_TOKEN_HEADER = "X-Fieldline-Internal"


def require_internal(request: Request) -> None:
    expected = request.app.state.ctx.internal_token
    given = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=401, detail="internal endpoint: missing or wrong X-Fieldline-Internal"
        )


InternalOnly = Depends(require_internal)
