"""Signing in: OAuth2 password form -> short-lived bearer token; who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from fieldline_backend.gateway.auth import AccountsDep, CurrentUser

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
    # Behind Traefik, run uvicorn with --proxy-headers/--forwarded-allow-ips so that this
    # is the caller's address and not the proxy's.
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/token",
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


@router.get("/me", responses={401: {"description": "not signed in"}})
def me(user: CurrentUser) -> Me:
    return Me(id=user.id, username=user.username, is_admin=user.is_admin)
