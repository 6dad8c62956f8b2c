"""Signing in and out, the start page and the two static files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    cookie_is_secure,
    login_csrf_matches,
    new_login_csrf,
)
from fieldline_backend.console.web import (
    HERE,
    FormDep,
    SessionDep,
    redirect,
    render,
    safe_next,
    sessions_for,
)
from fieldline_backend.gateway.auth import accounts_for
from fieldline_backend.gateway.routes.auth import client_address

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


@router.get("/")
async def start() -> Response:
    return redirect("/devices")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response("no such file", status_code=404, media_type="text/plain")
    return FileResponse(
        HERE / "static" / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=300"},
    )


def _secure(request: Request) -> bool:
    return cookie_is_secure(request.url.scheme, request.app.state.ctx.settings.public_url)


def _login_page(request: Request, next_path: str, error: str | None = None, status: int = 200):
    value = new_login_csrf()
    response = render(
        request, "login.html", None, status=status, next=next_path, login_csrf=value, error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/devices",
) -> Response:
    target = safe_next(next)
    if not login_csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(
            request, target, "The form was out of date (or cookies are off); try again.", 403
        )
    ctx = request.app.state.ctx
    accounts = accounts_for(ctx)
    # The same limits as POST /api/v1/auth/token: counted in the database, before the check.
    attempt = await run_in_threadpool(accounts.sign_in, username, password, client_address(request))
    if attempt.retry_after is not None:
        wait = attempt.retry_after
        return _login_page(request, target, f"Too many failed sign-ins; wait {wait} s.", 429)
    user = attempt.user
    if user is None:
        return _login_page(request, target, "Wrong username or password.", 401)
    token = await run_in_threadpool(sessions_for(ctx).open, user)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(sessions_for(ctx).lifetime.total_seconds()),
        httponly=True,
        samesite="lax",  # lax: a link from a mail to a device page arrives signed in
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    await run_in_threadpool(sessions_for(request.app.state.ctx).close, session.token)
    response = redirect("/login", "signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
