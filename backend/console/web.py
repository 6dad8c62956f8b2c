"""What every console page shares: templates, the signed-in session, CSRF checks,
redirects and the small set of notices a page may show after a redirect."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fieldline_backend.console import charts
from fieldline_backend.console.api import Api, ApiError, api_for
from fieldline_backend.console.sessions import (
    SESSION_COOKIE,
    ConsoleSessions,
    csrf_matches,
    csrf_token,
)
from fieldline_backend.gateway.users import User

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(when=charts.when, number=charts.number)
EXTRAS_KEY = "console.sessions"

# Notices are looked up by key, so a link cannot make the console print arbitrary text.
NOTICES = {
    "signed-out": "You are signed out.",
    "rule-saved": "The rule is saved.",
    "rule-deleted": "The rule is deleted.",
    "rule-enabled": "The rule is enabled.",
    "rule-disabled": "The rule is disabled.",
    "device-enabled": "The device may connect again.",
    "device-disabled": "The device is disabled: it cannot connect until you enable it.",
    "token-revoked": "The token is revoked.",
    "config-sent": "The configuration is stored and sent; the device reports when it applies it.",
    "command-sent": "The command is sent; its outcome appears below when the device answers.",
    "rollout-started": "The rollout is started: its canary devices are offered the bundle.",
    "rollout-cancelled": "The rollout is cancelled: offers not taken are withdrawn.",
    "rollout-not-running": "The rollout had finished or was cancelled already; nothing changed.",
    "bundle-uploaded": "The bundle is uploaded and checked; choose the devices to offer it to.",
    "bundle-known": "You uploaded this bundle before; it is chosen below.",
    "bundle-deleted": "The bundle is deleted.",
}


def sessions_for(ctx) -> ConsoleSessions:
    found = ctx.extras.get(EXTRAS_KEY)
    if found is None:
        found = ctx.extras[EXTRAS_KEY] = ConsoleSessions(ctx.database)
    return found


@dataclass
class Session:
    token: str
    user: User
    api: Api

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class SignInFirst(HTTPException):
    """No live session: 303 to the login page, coming back here afterwards."""

    def __init__(self, request: Request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        super().__init__(303, "sign in first", headers={"Location": f"/login?next={quote(target)}"})


async def signed_in(request: Request) -> AsyncIterator[Session]:
    token = request.cookies.get(SESSION_COOKIE)
    user = await run_in_threadpool(sessions_for(request.app.state.ctx).user_for, token)
    if user is None:
        raise SignInFirst(request)
    api = api_for(request.app, token)
    try:
        yield Session(token=token, user=user, api=api)
    finally:
        await api.close()


SessionDep = Annotated[Session, Depends(signed_in)]


async def checked_form(request: Request, session: SessionDep) -> dict:
    """The posted form, once its CSRF token (field csrf_token or header X-CSRF-Token)
    proved it came from one of our pages; 403 otherwise."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not csrf_matches(session.token, sent):
        raise HTTPException(
            403,
            "refused: this form's security token is missing or out of date; "
            "reload the page and submit it again",
        )
    return {key: form.getlist(key) if len(form.getlist(key)) > 1 else form[key] for key in form}


FormDep = Annotated[dict, Depends(checked_form)]


def render(
    request: Request, name: str, session: Session | None, status: int = 200, **values
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    context = {"user": session.user if session else None, "notice": notice, **values}
    if session is not None:
        context["csrf"] = session.csrf
    response = templates.TemplateResponse(request, name, context, status_code=status)
    return with_security_headers(response)


# Only our own files; no framing (clickjacking), no inline script, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def compressed_fragment(request: Request, response: Response) -> Response:
    """Gzip a live fragment (charts are long runs of digits: ~4x smaller). Only the
    fragments: they hold no CSRF token or other secret, so compressing them next to
    reflected input cannot leak one (BREACH); whole pages stay uncompressed."""
    body = response.body
    if "gzip" not in request.headers.get("accept-encoding", "") or len(body) < 1024:
        return response
    response.body = gzip.compress(body, compresslevel=5)
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Length"] = str(len(response.body))
    response.headers["Vary"] = "Accept-Encoding"
    return response


def with_security_headers(response: Response) -> Response:
    # Pages show private data and sometimes a secret shown once: never cache them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def or_not_found(call: Awaitable, message: str):
    """The API's answer; its 404 (or 422 for an id of the wrong shape) as a 404 page
    saying `message`: another user's thing does not exist for this one."""
    try:
        return await call
    except ApiError as error:
        if error.status in (404, 422):
            raise HTTPException(404, message) from None
        raise


def redirect(path: str, notice: str | None = None) -> Response:
    if notice:
        path += ("&" if "?" in path else "?") + f"notice={notice}"
    return RedirectResponse(path, status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path of this site: never //other.example or https://other.example, nor
    what a browser turns into one (it drops tabs and line breaks, reads \\ as /)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return target
    return "/devices"
