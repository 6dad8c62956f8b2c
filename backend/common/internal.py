"""Service-to-service calls: /internal routes require the shared internal token."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request

INTERNAL_TOKEN_HEADER = "X-Fieldline-Internal"


def require_internal(request: Request) -> None:
    given = request.headers.get(INTERNAL_TOKEN_HEADER, "").encode()
    accepted = request.app.state.ctx.accepted_internal_tokens
    # Every candidate compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(given, token.encode()) for token in accepted]
    if not any(matches):
        raise HTTPException(
            status_code=401, detail="internal endpoint: missing or wrong X-Fieldline-Internal"
        )


InternalOnly = Depends(require_internal)
