"""mqtt_auth's SQL: accounts and their rules (no one else touches these tables)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fieldline_backend.common.db import Database
from fieldline_backend.mqtt_auth.models import MqttAccount, MqttAclRule


class AccountExists(Exception):
    pass


@dataclass(frozen=True)
class AccountRecord:
    """An account as the service sees it (detached from any session)."""

    client_id: str
    owner_id: str
    name: str
    metadata: dict
    enabled: bool
    password_hash: str
    rules: tuple[tuple[str, str], ...]  # (access, topic filter)


def _record(row: MqttAccount) -> AccountRecord:
    return AccountRecord(
        client_id=row.client_id,
        owner_id=row.owner_id,
        name=row.name,
        metadata=dict(row.device_metadata or {}),
        enabled=row.enabled,
        password_hash=row.password_hash,
        rules=tuple(sorted((rule.access, rule.topic) for rule in row.rules)),
    )


def _now() -> datetime:
    return datetime.now(UTC)


class AccountRepository:
    def __init__(self, database: Database):
        self.database = database

    def create(
        self,
        client_id: str,
        owner_id: str,
        name: str,
        metadata: dict,
        password_hash: str,
        rules: list[tuple[str, str]],
    ) -> AccountRecord:
        now = _now()
        row = MqttAccount(
            client_id=client_id,
            owner_id=owner_id,
            name=name,
            device_metadata=metadata,
            enabled=True,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        row.rules = [MqttAclRule(access=access, topic=topic) for access, topic in rules]
        try:
            with self.database.session() as session:
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError as error:
            raise AccountExists(client_id) from error

    def get(self, client_id: str) -> AccountRecord | None:
        with self.database.session() as session:
            row = session.get(MqttAccount, client_id)
            return _record(row) if row else None

    def update(self, client_id: str, **changes) -> AccountRecord | None:
        """Set the given fields (name, metadata, enabled, password_hash)."""
        with self.database.session() as session:
            row = session.get(MqttAccount, client_id, with_for_update=True)
            if row is None:
                return None
            for key, value in changes.items():
                setattr(row, "device_metadata" if key == "metadata" else key, value)
            row.updated_at = _now()
            session.flush()
            return _record(row)

    def delete(self, client_id: str) -> bool:
        with self.database.session() as session:
            row = session.get(MqttAccount, client_id)
            if row is None:
                return False
            session.delete(row)
            return True

    def enabled_accounts(self) -> list[AccountRecord]:
        with self.database.session() as session:
            rows = session.scalars(
                select(MqttAccount)
                .where(MqttAccount.enabled.is_(True))
                .order_by(MqttAccount.client_id)
            )
            return [_record(row) for row in rows]
