"""gateway's tables: user accounts, their tokens, and login attempts (for rate limits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fieldline_backend.common.db import Base


class UserRecord(Base):
    __tablename__ = "gateway_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TokenRecord(Base):
    """A bearer token: a short-lived access token from a login, or a personal API token.

    Only the SHA-256 of the token is kept: the tokens are 256-bit random values, so a
    fast hash is enough (no dictionary to attack) and lookup stays one indexed query.
    """

    __tablename__ = "gateway_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("gateway_users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # "access" | "personal"
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginAttempts(Base):
    """Login attempts counted against a username or a client address in the current
    window (login_limits.py): one row per subject, updated in place under its lock."""

    __tablename__ = "gateway_login_attempts"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "user" | "address"
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    count: Mapped[int] = mapped_column(Integer)
    # A random value written by the statement that took the last attempt: the reservation
    # reads it back to know whether its own statement got one.
    last_grant: Mapped[str] = mapped_column(String(32))
