"""Bearer tokens: access tokens from a login (expire after settings.access_token_minutes)
and personal API tokens for scripts and `provision` (live until revoked or their expiry).

A token is shown once; the database keeps its SHA-256 only. Both kinds live in one table
so that checking a bearer token is one indexed lookup whichever kind it is. Keeping access
tokens in the database (rather than signed JWTs) means no signing key to share between
gateway replicas and a token can be revoked at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from fieldline_backend.common.db import Database
from fieldline_backend.gateway.clock import as_utc, utcnow
from fieldline_backend.gateway.models import TokenRecord, UserRecord
from fieldline_backend.gateway.users import User

ACCESS_PREFIX = "fla_"
PERSONAL_PREFIX = "flp_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)  # 256 random bits


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # the only time the plaintext exists outside the holder
    name: str | None
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class PersonalToken:
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None


class TokenStore:
    def __init__(self, database: Database, access_token_minutes: int):
        self.database = database
        self.access_lifetime = timedelta(minutes=access_token_minutes)

    def _issue(self, user_id: int, kind: str, prefix: str, name, expires_at) -> IssuedToken:
        token = new_token(prefix)
        now = utcnow()
        with self.database.session() as session:
            record = TokenRecord(
                user_id=user_id,
                kind=kind,
                name=name,
                prefix=token[:12],
                token_hash=token_hash(token),
                created_at=now,
                expires_at=expires_at,
            )
            session.add(record)
            session.flush()
            return IssuedToken(record.id, token, name, now, expires_at)

    def issue_access(self, user: User) -> IssuedToken:
        now = utcnow()
        with self.database.session() as session:  # expired access tokens are only litter
            session.execute(
                delete(TokenRecord).where(
                    TokenRecord.kind == "access", TokenRecord.expires_at <= now
                )
            )
        return self._issue(user.id, "access", ACCESS_PREFIX, None, now + self.access_lifetime)

    def issue_personal(self, user: User, name: str, expires_in_days: int | None) -> IssuedToken:
        expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        return self._issue(user.id, "personal", PERSONAL_PREFIX, name, expires_at)

    def user_for(self, token: str) -> User | None:
        """The user a bearer token belongs to, if the token exists and has not expired."""
        with self.database.session() as session:
            row = session.execute(
                select(UserRecord, TokenRecord.expires_at)
                .join(TokenRecord, TokenRecord.user_id == UserRecord.id)
                .where(TokenRecord.token_hash == token_hash(token))
            ).first()
        if row is None:
            return None
        record, expires_at = row
        expires_at = as_utc(expires_at)
        if expires_at is not None and expires_at <= utcnow():
            return None
        return User(id=record.id, username=record.username, is_admin=record.is_admin)

    def personal_tokens(self, user: User) -> list[PersonalToken]:
        with self.database.session() as session:
            records = session.scalars(
                select(TokenRecord)
                .where(TokenRecord.user_id == user.id, TokenRecord.kind == "personal")
                .order_by(TokenRecord.id)
            ).all()
            return [
                PersonalToken(
                    id=r.id,
                    name=r.name or "",
                    prefix=r.prefix,
                    created_at=as_utc(r.created_at),
                    expires_at=as_utc(r.expires_at),
                )
                for r in records
            ]

    def revoke_personal(self, user: User, token_id: int) -> bool:
        """Delete one of the user's personal tokens; False when there is no such token."""
        with self.database.session() as session:
            result = session.execute(
                delete(TokenRecord).where(
                    TokenRecord.id == token_id,
                    TokenRecord.user_id == user.id,
                    TokenRecord.kind == "personal",
                )
            )
            return result.rowcount == 1

    def revoke(self, user: User, token: str) -> None:
        """Delete the token itself (any kind the user holds); checked on every request,
        so it is refused from the next one on."""
        with self.database.session() as session:
            session.execute(
                delete(TokenRecord).where(
                    TokenRecord.token_hash == token_hash(token), TokenRecord.user_id == user.id
                )
            )
