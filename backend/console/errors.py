"""Errors on console pages come back as pages, not JSON.

`ConsoleRoute` is the route class of every console router: an HTTPException raised by a
page (404 for another user's device, 403 for a missing CSRF token) is drawn with
error.html and keeps its status and headers; a redirect (303 to the login form) stays a
redirect. A failure of the API underneath (a service unreachable) becomes a 503 page
that says to retry, never a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from fieldline_backend.console.api import ApiError

log = logging.getLogger(__name__)


def error_page(request: Request, status: int, message: str, headers=None) -> Response:
    from fieldline_backend.console.web import templates, with_security_headers

    wants_fragment = request.headers.get("x-requested-with") == "fetch"
    if wants_fragment:  # the page's script keeps the old content and marks it stale
        response: Response = Response(message, status_code=status, media_type="text/plain")
    else:
        response = templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "message": message, "user": None, "title": f"Error {status}"},
            status_code=status,
        )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return with_security_headers(response)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as error:
                if 300 <= error.status_code < 400:
                    return Response(status_code=error.status_code, headers=error.headers)
                return error_page(request, error.status_code, str(error.detail), error.headers)
            except ApiError as error:
                status = error.status if 400 <= error.status < 500 else 503
                message = "; ".join(error.messages())
                if status == 503:
                    message = f"A service behind the console did not answer ({message}); retry."
                return error_page(request, status, message)

        return handle
