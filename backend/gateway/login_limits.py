"""Failed-login rate limits, per username and per client address.

The state is kept in the database, not in the process: the gateway runs as several
replicas behind Traefik, and in-process counters would multiply the allowance by the
replica count and forget it on every restart.

Check and count are one step. Before a password is verified, the attempt *reserves* a
slot for the username and then for the address, each with one
`INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on the subject's row: the database runs
the check ("fewer than `limit` attempts in this window?") and the count together, under
the row's lock (PostgreSQL) or the single writer lock (SQLite). So 40 parallel wrong
passwords get at most `limit` password checks, whatever the number of gateway replicas;
checking first and counting after the (slow) password hash let all 40 through. A right
password gives its slots back: the username's count is cleared, the address's slot is
returned. A wrong one leaves its slot taken: that is the failure being counted.

The window is fixed, starting at the subject's first counted attempt: a subject that used
up its attempts waits until `window_seconds` after that first one (Retry-After says when).
A limited username or address gets 429 even with the right password, so guessing on
cannot tell when it has found it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from fieldline_backend.common.db import Database
from fieldline_backend.gateway.clock import as_utc, utcnow
from fieldline_backend.gateway.models import LoginAttempts
from fieldline_backend.gateway.users import USERNAME_PATTERN

log = logging.getLogger(__name__)

# Defaults; the process takes FIELDLINE_LOGIN_USER_LIMIT, _ADDRESS_LIMIT, _WINDOW_SECONDS.
USER_LIMIT = 5  # failed logins per username per window
ADDRESS_LIMIT = 20  # failed logins per client address per window (several users behind one NAT)
WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Slot:
    """One reserved attempt: (scope, subject) in the window that started at window_start."""

    scope: str
    subject: str
    window_start: datetime


@dataclass(frozen=True)
class Reservation:
    """The outcome of reserve(): slots to give back on success, or seconds to wait."""

    slots: tuple[Slot, ...] = ()
    retry_after: int | None = None  # set: refused, try again in this many seconds


@dataclass
class LoginLimits:
    database: Database
    user_limit: int = USER_LIMIT
    address_limit: int = ADDRESS_LIMIT
    window_seconds: int = WINDOW_SECONDS

    def reserve(self, username: str, address: str) -> Reservation:
        """Take one attempt for the username, then one for the address; refused (with the
        seconds to wait) when either has none left. Call before checking the password."""
        taken: list[Slot] = []
        for scope, subject, limit in (
            ("user", _subject(username), self.user_limit),
            ("address", address[:255], self.address_limit),
        ):
            slot, wait = self._take(scope, subject, limit)
            if slot is None:
                self._give_back(taken)  # the username's slot was not used: no password check
                return Reservation(retry_after=wait)
            taken.append(slot)
        return Reservation(slots=tuple(taken))

    def succeeded(self, reservation: Reservation) -> None:
        """A right password: clear the username's count, return the address's slot (one
        user signing in does not use up the attempts of the others behind the same NAT)."""
        with self.database.session() as session:
            for slot in reservation.slots:
                if slot.scope == "user":
                    session.execute(
                        delete(LoginAttempts).where(
                            LoginAttempts.scope == slot.scope,
                            LoginAttempts.subject == slot.subject,
                        )
                    )
        self._give_back([slot for slot in reservation.slots if slot.scope != "user"])
        self._sweep()

    def _sweep(self) -> None:
        """Delete windows long over (only litter). Its own transaction: a reservation holds
        one row lock at a time, so it never waits in a cycle with this. Two sweeps at once
        could (PostgreSQL then aborts one): that one's rows are the other's to delete, so
        the error is dropped rather than failing a login that succeeded."""
        try:
            with self.database.session() as session:
                session.execute(
                    delete(LoginAttempts).where(
                        LoginAttempts.window_start
                        <= utcnow() - timedelta(seconds=self.window_seconds)
                    )
                )
        except OperationalError as error:
            log.info("login-attempt sweep skipped: %s", error.orig)

    def _take(self, scope: str, subject: str, limit: int) -> tuple[Slot | None, int]:
        """(the slot, 0) when an attempt was left, else (None, seconds to wait)."""
        now = utcnow()
        window = timedelta(seconds=self.window_seconds)
        grant = secrets.token_hex(8)  # says whether *this* statement took the attempt
        table = LoginAttempts.__table__
        old = table.c
        stale = old.window_start <= now - window
        with self.database.session() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            statement = dialect.insert(table).values(
                scope=scope, subject=subject, window_start=now, count=1, last_grant=grant
            )
            # In SET, every column read is the row's value before this update.
            statement = statement.on_conflict_do_update(
                index_elements=[old.scope, old.subject],
                set_={
                    "window_start": _case(stale, now, old.window_start),
                    "count": _case(stale, 1, _case(old.count < limit, old.count + 1, old.count)),
                    "last_grant": _case(stale | (old.count < limit), grant, old.last_grant),
                },
            ).returning(old.window_start, old.last_grant)
            window_start, granted = session.execute(statement).one()
        window_start = as_utc(window_start)
        if granted == grant:
            return Slot(scope, subject, window_start), 0
        wait = (window_start + window - now).total_seconds()
        return None, max(1, math.ceil(wait))

    def _give_back(self, slots: list[Slot]) -> None:
        if not slots:
            return
        with self.database.session() as session:
            for slot in slots:
                session.execute(
                    update(LoginAttempts)
                    .where(
                        LoginAttempts.scope == slot.scope,
                        LoginAttempts.subject == slot.subject,
                        LoginAttempts.window_start == slot.window_start,
                        LoginAttempts.count > 0,
                    )
                    .values(count=LoginAttempts.count - 1)
                )


def _case(condition, then, otherwise):
    return case((condition, then), else_=otherwise)


def _subject(username: str) -> str:
    """The username as stored; a name no user can have is counted by its hash (it may
    hold anything, NUL bytes included)."""
    if USERNAME_PATTERN.fullmatch(username):
        return username
    return "invalid:" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
