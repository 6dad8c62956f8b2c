"""Signing in: OAuth2 password form -> short-lived bearer token; who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from fieldline_backend.gateway.auth import AccountsDep, BearerToken, CurrentUser, NoStore

router = APIRouter(prefix="/api/v1", tags=["auth"])


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds


class Me(BaseModel):
    id: int
    username: str
    is_admin: bool


def client_address(request: Request) -> str:
    # The TCP peer, or what a proxy listed in FIELDLINE_TRUSTED_PROXIES forwarded
    # (runner.server_for): behind Traefik, the caller's address and not the proxy's.
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/token",
    dependencies=[NoStore],
    responses={
        401: {"description": "wrong username or password"},
        429: {"description": "too many failed logins; see Retry-After"},
    },
)
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    accounts: AccountsDep,
) -> AccessToken:
    attempt = accounts.sign_in(form.username, form.password, client_address(request))
    if attempt.retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins for this user or address; "
            f"try again in {attempt.retry_after} s",
            headers={"Retry-After": str(attempt.retry_after)},
        )
    user = attempt.user
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    issued = accounts.tokens.issue_access(user)
    return AccessToken(
        access_token=issued.token, expires_in=int(accounts.tokens.access_lifetime.total_seconds())
    )


@router.delete(
    "/auth/token",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "not signed in (or the token is revoked already)"}},
)
def revoke_this_token(user: CurrentUser, accounts: AccountsDep, token: BearerToken) -> Response:
    """Sign out: revoke the bearer token this request carries (an access token from a
    login, or a personal token); from now on it answers 401. Personal tokens can also be
    revoked by id (DELETE /api/v1/tokens/{id})."""
    accounts.tokens.revoke(user, token or "")  # CurrentUser made sure there is one
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses={401: {"description": "not signed in"}})
def me(user: CurrentUser) -> Me:
    return Me(id=user.id, username=user.username, is_admin=user.is_admin)
