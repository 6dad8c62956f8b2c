"""422 answers that can always be written.

FastAPI's default 422 echoes the offending input. Python's JSON parser accepts NaN and
Infinity and "\\ud800" escapes, and such input cannot be written back as strict UTF-8
JSON, so the default handler fails with a 500 on exactly the bad input it should refuse.
`validation_error_response` answers those requests with a 422 whose echo is made safe
(non-finite numbers as text, ASCII escapes); backend/app.py installs it for every route.

Some input passes validation and is still refused by the database (PostgreSQL stores no
NUL byte in a text column; SQLite does). `database_refused_response` turns that refusal
(SQLAlchemy's DataError: always a value, never the server) into a 422 as well.
"""

from __future__ import annotations

import json
import math

from fastapi import Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.responses import JSONResponse


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_finite(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class AsciiJSONResponse(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def validation_error_response(error: RequestValidationError) -> Response:
    errors = _finite(jsonable_encoder(error.errors(), custom_encoder={bytes: repr}))
    return AsciiJSONResponse(status_code=422, content={"detail": errors})


def database_refused_response(error: DataError) -> Response:
    reason = str(error.orig).splitlines()[0] if error.orig else "invalid value"
    return AsciiJSONResponse(
        status_code=422,
        content={"detail": f"a value the database cannot store: {reason}; remove it and retry"},
    )
