"""Who is calling: the FastAPI dependencies every public route uses.

    from fieldline_backend.gateway.auth import CurrentUser

    @router.get("/api/v1/things")
    def things(user: CurrentUser): ...   # user.id, user.username, user.is_admin

A request without a valid, unexpired bearer token (access token or personal API token)
gets 401 before the route runs; `AdminUser` also gives 403 to non-admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordBearer

from fieldline_backend.gateway.login_limits import LoginLimits
from fieldline_backend.gateway.tokens import TokenStore
from fieldline_backend.gateway.users import User, UserStore

TOKEN_URL = "/api/v1/auth/token"
EXTRAS_KEY = "gateway.accounts"

_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


@dataclass(frozen=True)
class SignIn:
    user: User | None  # None: refused (wrong password, or limited when retry_after is set)
    retry_after: int | None = None


@dataclass
class Accounts:
    users: UserStore
    tokens: TokenStore
    limits: LoginLimits

    def sign_in(self, username: str, password: str, address: str) -> SignIn:
        """Check a password under the failed-login limits (the API's token route and the
        console's form both sign in here). The attempt is counted before the password is
        checked, so parallel guesses cannot all get a check."""
        reservation = self.limits.reserve(username, address)
        if reservation.retry_after is not None:
            return SignIn(None, reservation.retry_after)
        user = self.users.authenticate(username, password)
        if user is not None:
            self.limits.succeeded(reservation)
        return SignIn(user)


def accounts_for(ctx) -> Accounts:
    """The process's account stores, made once per Context."""
    found = ctx.extras.get(EXTRAS_KEY)
    if found is None:
        found = Accounts(
            users=UserStore(ctx.database),
            tokens=TokenStore(ctx.database, ctx.settings.access_token_minutes),
            limits=LoginLimits(
                ctx.database,
                user_limit=ctx.settings.login_user_limit,
                address_limit=ctx.settings.login_address_limit,
                window_seconds=ctx.settings.login_window_seconds,
            ),
        )
        ctx.extras[EXTRAS_KEY] = found
    return found


def get_accounts(request: Request) -> Accounts:
    return accounts_for(request.app.state.ctx)


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def no_store(response: Response) -> None:
    """For every answer that carries a secret (a token, a device password): no cache, no
    proxy and no browser history keeps it (RFC 6749 5.1; Pragma for HTTP/1.0 caches)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NoStore = Depends(no_store)


BearerToken = Annotated[str | None, Depends(_bearer)]  # the token as sent, if any


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=message,
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_user(accounts: AccountsDep, token: BearerToken) -> User:
    if not token:
        raise _unauthorized(
            "not signed in: send 'Authorization: Bearer <token>' with a token from "
            f"POST {TOKEN_URL} or a personal API token"
        )
    user = accounts.tokens.user_for(token)
    if user is None:
        raise _unauthorized(
            f"the bearer token is unknown, revoked or expired; sign in again at POST {TOKEN_URL}"
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only an admin may do this; ask an admin of this Fieldline",
        )
    return user


AdminUser = Annotated[User, Depends(admin_user)]
