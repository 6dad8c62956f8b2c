"""Failed-login rate limits, per username and per client address (sliding window).

The state is kept in the database, not in the process: the gateway runs as several
replicas behind Traefik, and in-process counters would multiply the allowance by the
replica count and forget it on every restart. A failed login is already slow (argon2),
so one more small write costs nothing that matters.

A limited username or address gets 429 even with the right password, so guessing on
cannot tell when it has found it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from fieldline_backend.common.db import Database
from fieldline_backend.gateway.clock import as_utc, utcnow
from fieldline_backend.gateway.models import LoginFailure
from fieldline_backend.gateway.users import USERNAME_PATTERN

USER_LIMIT = 5  # failures per username per window
ADDRESS_LIMIT = 20  # failures per client address per window (several users behind one NAT)
WINDOW_SECONDS = 300


@dataclass
class LoginLimits:
    database: Database
    user_limit: int = USER_LIMIT
    address_limit: int = ADDRESS_LIMIT
    window_seconds: int = WINDOW_SECONDS

    def _subjects(self, username: str, address: str) -> list[tuple[str, str, int]]:
        return [
            ("user", _subject(username), self.user_limit),
            ("address", address[:255], self.address_limit),
        ]

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        now = utcnow()
        since = now - timedelta(seconds=self.window_seconds)
        wait = 0.0
        with self.database.session() as session:
            for scope, subject, limit in self._subjects(username, address):
                times = session.scalars(
                    select(LoginFailure.failed_at)
                    .where(
                        LoginFailure.scope == scope,
                        LoginFailure.subject == subject,
                        LoginFailure.failed_at > since,
                    )
                    .order_by(LoginFailure.failed_at)
                ).all()
                if len(times) >= limit:
                    # Allowed again once enough of the oldest failures leave the window.
                    frees_at = as_utc(times[len(times) - limit]) + timedelta(
                        seconds=self.window_seconds
                    )
                    wait = max(wait, (frees_at - now).total_seconds())
        return max(1, math.ceil(wait)) if wait > 0 else None

    def record_failure(self, username: str, address: str) -> None:
        now = utcnow()
        since = now - timedelta(seconds=self.window_seconds)
        with self.database.session() as session:
            for scope, subject, _limit in self._subjects(username, address):
                session.execute(
                    delete(LoginFailure).where(
                        LoginFailure.scope == scope,
                        LoginFailure.subject == subject,
                        LoginFailure.failed_at <= since,
                    )
                )
                session.add(LoginFailure(scope=scope, subject=subject, failed_at=now))

    def record_success(self, username: str) -> None:
        """A right password clears the username's count (not the address's)."""
        with self.database.session() as session:
            session.execute(
                delete(LoginFailure).where(
                    LoginFailure.scope == "user", LoginFailure.subject == _subject(username)
                )
            )


def _subject(username: str) -> str:
    """The username as stored; a name no user can have is counted by its hash (it may
    hold anything, NUL bytes included)."""
    if USERNAME_PATTERN.fullmatch(username):
        return username
    return "invalid:" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
