"""422 answers that can always be written.

FastAPI's default 422 echoes the offending input. Python's JSON parser accepts NaN and
Infinity and "\\ud800" escapes, and such input cannot be written back as strict UTF-8
JSON, so the default handler fails with a 500 on exactly the bad input it should refuse.
`validation_error_response` answers those requests with a 422 whose echo is made safe
(non-finite numbers as text, ASCII escapes); backend/app.py installs it for every route.
The echo is also bounded: an `input` (or any string in an error) past a few hundred
characters is cut and says so, so a large body is never sent back (it was, in full: a
100 MB body got a 100 MB 422). The shape stays the one the OpenAPI document declares:
`detail` is a list of {loc, msg, type, input?, ctx?}.

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

ECHO_CHARS = 200  # longest string echoed back in a 422
ECHO_ITEMS = 20  # most list items / object keys echoed back in a 422
ECHO_ERRORS = 50  # most errors listed in one 422
ECHO_BYTES = 1000  # an error's input longer than this (as JSON) is echoed as a preview


def _clipped(value, depth: int = 0):
    """value with long strings cut, long lists/objects shortened and deep nesting elided."""
    if isinstance(value, str):
        if len(value) <= ECHO_CHARS:
            return value
        return f"{value[:ECHO_CHARS]}... ({len(value)} characters, cut)"
    if isinstance(value, dict | list | tuple) and depth >= 3:
        return f"({type(value).__name__} nested too deep to echo)"
    if isinstance(value, dict):
        items = list(value.items())
        out = {_clipped(str(k)): _clipped(v, depth + 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            out["..."] = f"{len(items) - ECHO_ITEMS} more keys, cut"
        return out
    if isinstance(value, list | tuple):
        out = [_clipped(v, depth + 1) for v in value[:ECHO_ITEMS]]
        if len(value) > ECHO_ITEMS:
            out.append(f"... {len(value) - ECHO_ITEMS} more items, cut")
        return out
    return value


def _echo(value):
    """The input of one error as echoed: itself when short, else a cut JSON preview."""
    value = _clipped(value)
    text = json.dumps(value, ensure_ascii=True)
    if len(text) <= ECHO_BYTES:
        return value
    return f"{text[:ECHO_CHARS]}... (cut)"


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
    found = error.errors()
    errors = [
        {key: _echo(value) if key == "input" else _clipped(value) for key, value in entry.items()}
        for entry in _finite(jsonable_encoder(found[:ECHO_ERRORS], custom_encoder={bytes: repr}))
    ]
    return AsciiJSONResponse(status_code=422, content={"detail": errors})


def database_refused_response(error: DataError) -> Response:
    reason = str(error.orig).splitlines()[0] if error.orig else "invalid value"
    return AsciiJSONResponse(
        status_code=422,
        content={"detail": f"a value the database cannot store: {reason}; remove it and retry"},
    )
