"""User accounts: argon2id password hashes, creation with a password policy, login check.

`create_user_in(settings, ...)` is what `fieldline users create` calls: it migrates the
configured database first, so it works on a fresh data dir.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fieldline_backend.common.db import Database
from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.clock import utcnow
from fieldline_backend.gateway.models import UserRecord

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work per login
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("fieldline-no-such-user")


class UserExists(Exception):
    """A user with this username exists already."""


@dataclass(frozen=True)
class User:
    """A signed-in or stored user, detached from any database session."""

    id: int
    username: str
    is_admin: bool


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username or ""):
        raise ValueError(
            "username must be 1-64 characters: letters, digits and _ . @ + -, "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if not password:
        raise ValueError("password is empty; choose one of at least 8 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"password is too short ({len(password)} characters); "
            f"use at least {MIN_PASSWORD_LENGTH}"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password is too long; use at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(record: UserRecord) -> User:
    return User(id=record.id, username=record.username, is_admin=record.is_admin)


class UserStore:
    def __init__(self, database: Database):
        self.database = database

    def create(self, username: str, password: str, admin: bool = False) -> User:
        check_username(username)
        check_password(password)
        password_hash = hash_password(password)  # slow on purpose: outside the transaction
        try:
            with self.database.session() as session:
                record = UserRecord(
                    username=username,
                    password_hash=password_hash,
                    is_admin=admin,
                    created_at=utcnow(),
                )
                session.add(record)
                session.flush()
                return _user(record)
        except IntegrityError as error:
            raise UserExists(username) from error

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right, else None (same work either way)."""
        if not USERNAME_PATTERN.fullmatch(username) or len(password) > MAX_PASSWORD_LENGTH:
            # Cannot be a stored user or password (and NUL bytes would upset PostgreSQL).
            password_matches(_DUMMY_HASH, "")
            return None
        with self.database.session() as session:
            record = session.scalar(select(UserRecord).where(UserRecord.username == username))
            stored = record.password_hash if record else _DUMMY_HASH
            user = _user(record) if record else None
        if password_matches(stored, password) and user is not None:
            return user
        return None

    def get(self, user_id: int) -> User | None:
        with self.database.session() as session:
            record = session.get(UserRecord, user_id)
            return _user(record) if record else None


def create_user_in(settings: Settings, username: str, password: str, admin: bool = False) -> User:
    """Create a user in the configured database (migrating it first). Raises UserExists,
    or ValueError with a message a person can act on."""
    check_username(username)
    check_password(password)
    database = Database(settings.sqlalchemy_url)
    try:
        database.migrate()
        return UserStore(database).create(username, password, admin=admin)
    finally:
        database.dispose()
