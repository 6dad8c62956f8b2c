"""Console sign-in: a session cookie backed by a row in the gateway's token table.

A session is a bearer token of kind "console" (`fls_...`, 256 random bits, stored as
its SHA-256 like every other token), so signing out or an admin deleting it ends the
session at once, on every gateway replica, with no signing key to share. The console
sends it as a bearer token to the gateway's own API, so a page can never see more than
the API would show this user.

CSRF: every state-changing form carries `csrf_token(session)`, an HMAC of a fixed label
under the session token. A forged cross-site form cannot know it (the cookie is
HttpOnly and the token is never in a URL), and nothing needs to be stored for it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from fieldline_backend.common.db import Database
from fieldline_backend.gateway.clock import as_utc, utcnow
from fieldline_backend.gateway.models import TokenRecord, UserRecord
from fieldline_backend.gateway.tokens import token_hash
from fieldline_backend.gateway.users import User

SESSION_COOKIE = "fieldline_session"
LOGIN_CSRF_COOKIE = "fieldline_login_csrf"
SESSION_PREFIX = "fls_"
SESSION_KIND = "console"
SESSION_LIFETIME = timedelta(hours=12)  # a working day; then sign in again
_CSRF_LABEL = b"fieldline-console-csrf-v1"


class ConsoleSessions:
    def __init__(self, database: Database, lifetime: timedelta = SESSION_LIFETIME):
        self.database = database
        self.lifetime = lifetime

    def open(self, user: User) -> str:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self.database.session() as session:
            session.execute(  # expired sessions are only litter
                delete(TokenRecord).where(
                    TokenRecord.kind == SESSION_KIND, TokenRecord.expires_at <= now
                )
            )
            session.add(
                TokenRecord(
                    user_id=user.id,
                    kind=SESSION_KIND,
                    name="console session",
                    prefix=token[:12],
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return token

    def user_for(self, token: str | None) -> User | None:
        """The user of a live console session; None for anything else (an API token
        in the cookie included: the cookie only ever carries console sessions)."""
        if not token or not token.startswith(SESSION_PREFIX) or len(token) > 200:
            return None
        with self.database.session() as session:
            row = session.execute(
                select(UserRecord, TokenRecord.expires_at)
                .join(TokenRecord, TokenRecord.user_id == UserRecord.id)
                .where(TokenRecord.token_hash == token_hash(token))
                .where(TokenRecord.kind == SESSION_KIND)
            ).first()
        if row is None:
            return None
        record, expires_at = row
        if as_utc(expires_at) <= utcnow():
            return None
        return User(id=record.id, username=record.username, is_admin=record.is_admin)

    def close(self, token: str) -> None:
        with self.database.session() as session:
            session.execute(
                delete(TokenRecord).where(
                    TokenRecord.token_hash == token_hash(token), TokenRecord.kind == SESSION_KIND
                )
            )


def csrf_token(session_token: str) -> str:
    key = session_token.encode("utf-8", "surrogatepass")
    return hmac.new(key, _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return bool(sent) and _same(csrf_token(session_token), sent)


def new_login_csrf() -> str:
    """The login form has no session yet: a random value in a cookie and in the form
    (double submit), so another site cannot sign a browser into an account of its own."""
    return secrets.token_urlsafe(24)


def login_csrf_matches(cookie: str | None, sent: str | None) -> bool:
    return bool(cookie) and bool(sent) and _same(cookie, sent)


def _same(expected: str, sent) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a form may hold anything.
    encode = lambda text: str(text).encode("utf-8", "surrogatepass")  # noqa: E731
    return hmac.compare_digest(encode(expected), encode(sent))


def cookie_is_secure(scheme: str, public_url: str | None) -> bool:
    """Secure when the browser reached us over https, or the operator says the public
    address is https (TLS ends at Traefik, which talks plain http to us). A Secure
    cookie on http://127.0.0.1 would never come back, so plain local http stays usable."""
    return scheme == "https" or (public_url or "").lower().startswith("https://")
