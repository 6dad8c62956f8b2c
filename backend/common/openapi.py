"""The OpenAPI document says what the code answers: the error statuses any operation
can give (docs/api.md "Errors"), one error body for all of them, and 405 answers whose
`Allow` lists every method of the path (Starlette's names only the first route's)."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "description": "what is wrong: a message, or a list of {loc, msg, type} "
            "naming each field at fault"
        }
    },
}

EVERY_OPERATION = {
    400: "a malformed parameter, header or body (the message names it)",
    413: "the body is over the limit (docs/api.md, 'Limits')",
    422: "a field or parameter is invalid; detail names it",
}
PUBLIC = {
    401: "not signed in, or the token is unknown, revoked or expired",
    403: "signed in, but not allowed (an admin-only call, or a token of the wrong kind)",
}
INTERNAL = {401: "missing or wrong X-Fieldline-Internal"}
WITH_PATH_ID = {404: "nothing of that id among the caller's"}
# A device whose MQTT account was removed behind the registry's back.
DEVICE_CHANGES = {409: "the device's MQTT account is gone: delete and register it again"}


def declared_errors(path: str) -> dict[int, str]:
    """The error statuses an operation on `path` can answer, beside its own."""
    codes = dict(EVERY_OPERATION)
    if path.startswith("/api/"):
        codes |= PUBLIC
    elif path.startswith("/internal/"):
        codes |= INTERNAL
    if "{" in path:
        codes |= WITH_PATH_ID
    if path.startswith(("/api/v1/devices/{device_id}", "/internal/devices/{device_id}")):
        codes |= DEVICE_CHANGES
    return codes


def _document(app: FastAPI) -> dict:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for code, why in declared_errors(path).items():
                entry = responses.setdefault(str(code), {"description": why})
                # One error body whatever raised it: detail is a string or a list.
                entry["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
    return schema


def _methods_by_path(app: FastAPI) -> list[tuple[re.Pattern, str]]:
    """(path pattern, 'DELETE, GET, ...') of each documented path, made once."""
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        # The most literal path first: /alert-rules/preview before /alert-rules/{rule_id}.
        paths = sorted(app.openapi().get("paths", {}).items(), key=lambda p: p[0].count("{"))
        for path, item in paths:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            table.append((re.compile(f"^{pattern}$"), ", ".join(sorted(m.upper() for m in item))))
        app.state.allowed_methods = table
    return table


async def _http_error(request: Request, error: Exception):
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        path = request.url.path
        for pattern, methods in _methods_by_path(request.app):
            if pattern.match(path):
                error.headers = {**(error.headers or {}), "Allow": methods}
                break
    return await http_exception_handler(request, error)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(StarletteHTTPException, _http_error)
