"""Request bodies over a limit are refused with a 413 before they are read.

Without it a 100 MB JSON body was read, parsed and echoed back in the 422: five in
parallel took the process to 2.2 GB. `BodyLimitMiddleware` wraps the whole app (the
outermost layer, so nothing below it buffers a byte first):

- a Content-Length over the limit is answered at once, without calling the app;
- a body without Content-Length (chunked) is counted as the app reads it, and the read
  that crosses the limit raises `BodyTooLarge`, answered with the same 413.

The 413 carries `Connection: close`: the rest of the body is never read, the connection
is dropped (HTTP clients read the answer even while they were still sending).

The limit is FIELDLINE_HTTP_MAX_BODY_BYTES. A route that needs more says so with
FastAPI's own `max_body_size=` on its decorator (e.g. the alerts service's batch routes);
backend/app.py hands those to this middleware (`route_overrides`), so the route is the
one place to look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from fastapi.routing import APIRoute, APIRouter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024


def too_large_detail(limit: int) -> str:
    return (
        f"request body over {limit} bytes, the limit of this route; "
        "send less (split a batch) or ask the operator (FIELDLINE_HTTP_MAX_BODY_BYTES)"
    )


class BodyTooLarge(HTTPException):
    """Raised from receive(); FastAPI passes HTTPExceptions through its body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit), headers={"Connection": "close"})


Override = tuple[re.Pattern, set[str] | None, int]  # path regex, methods, limit


def route_overrides(routers: Iterable[APIRouter]) -> list[Override]:
    """The routes of these routers that declare `max_body_size=` (their own limit).

    Read from the routers as the components built them (before FastAPI flattens them
    into the app, where they are no longer plain APIRoutes).
    """
    return [
        (route.path_regex, route.methods, route.max_body_size)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and getattr(route, "max_body_size", None)
    ]


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, default_limit: int, overrides: Iterable[Override] = ()
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.overrides = list(overrides)

    def limit_for(self, method: str, path: str) -> int:
        for regex, methods, limit in self.overrides:
            if (methods is None or method in methods) and regex.match(path):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            # Raised where no handler turned it into the answer (a route reading the
            # body itself, a middleware); past the response start there is nothing to say.
            if started:
                raise
            await _send_413(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before we are called
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large_detail(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_capped(request, limit: int, too_large: Exception) -> bytes:
    """A raw body (an upload) read as it streams in, `too_large` raised as soon as it
    passes `limit` or its Content-Length says it will: never held whole first. The
    middleware bounds it too; this keeps the route's own answer (and its bound) when a
    route is mounted elsewhere."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    return bytes(body)
