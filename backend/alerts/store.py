"""SQL for the alerts service: rules, states, history and the outbox (SQLAlchemy 2,
the same on PostgreSQL and SQLite)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from fieldline_backend.alerts.models import AlertRow, AlertRuleRow, AlertStateRow, OutboxRow
from fieldline_backend.alerts.rules import rule_to_json


def now_ms() -> int:
    return int(time.time() * 1000)


def new_rule_id() -> str:
    return "rul-" + secrets.token_hex(8)


def rule_json(row: AlertRuleRow) -> dict:
    return {
        "id": row.id,
        "owner_id": row.owner_id,
        **row.spec,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
    }


def public_rule(row: AlertRuleRow) -> dict:
    out = rule_to_json(rule_json(row))
    out.pop("created_ms", None)
    out.pop("updated_ms", None)
    out["created_at"] = row.created_ms
    out["updated_at"] = row.updated_ms
    return out


class RuleStore:
    def __init__(self, session: Session):
        self.session = session

    def add(self, owner_id: str, spec: dict) -> AlertRuleRow:
        stamp = now_ms()
        row = AlertRuleRow(
            id=new_rule_id(),
            owner_id=owner_id,
            kind=spec["kind"],
            enabled=spec["enabled"],
            spec=spec,
            created_ms=stamp,
            updated_ms=stamp,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, rule_id: str, owner_id: str | None = None) -> AlertRuleRow | None:
        row = self.session.get(AlertRuleRow, rule_id)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            return None
        return row

    def list(self, owner_id: str | None = None, enabled: bool | None = None):
        query = select(AlertRuleRow).order_by(AlertRuleRow.created_ms, AlertRuleRow.id)
        if owner_id is not None:
            query = query.where(AlertRuleRow.owner_id == owner_id)
        if enabled is not None:
            query = query.where(AlertRuleRow.enabled == enabled)
        return list(self.session.scalars(query))

    def replace(self, row: AlertRuleRow, spec: dict) -> AlertRuleRow:
        row.spec, row.kind, row.enabled = spec, spec["kind"], spec["enabled"]
        row.updated_ms = now_ms()
        self.session.flush()
        return row

    def remove(self, row: AlertRuleRow) -> None:
        self.session.execute(delete(AlertStateRow).where(AlertStateRow.rule_id == row.id))
        self.session.delete(row)


class StateStore:
    def __init__(self, session: Session):
        self.session = session

    def get_for_update(self, rule_id: str, device_key: str) -> AlertStateRow | None:
        query = (
            select(AlertStateRow)
            .where(AlertStateRow.rule_id == rule_id, AlertStateRow.device_key == device_key)
            .with_for_update()
        )
        return self.session.scalars(query).first()

    def deadman_standing(self, owner_id: str, device_id: str) -> bool:
        query = select(func.count()).where(
            AlertStateRow.owner_id == owner_id,
            AlertStateRow.device_id == device_id,
            AlertStateRow.kind == "deadman",
            AlertStateRow.level == "crit",
        )
        return bool(self.session.scalar(query))

    def held_for_device(self, owner_id: str, device_id: str) -> list[AlertStateRow]:
        """Value states of a device whose last level was never told (held back)."""
        query = (
            select(AlertStateRow)
            .where(
                AlertStateRow.owner_id == owner_id,
                AlertStateRow.device_id == device_id,
                AlertStateRow.kind != "deadman",
                AlertStateRow.level != AlertStateRow.notified_level,
            )
            .with_for_update()
        )
        return list(self.session.scalars(query))

    def firing(self) -> list[AlertStateRow]:
        query = select(AlertStateRow).where(
            AlertStateRow.notified_level.in_(("info", "warn", "crit")),
            AlertStateRow.level == AlertStateRow.notified_level,
        )
        return list(self.session.scalars(query))

    def standing(self) -> list[AlertStateRow]:
        """Every (rule, device) whose last reported level is not ok, all owners."""
        return list(self.session.scalars(select(AlertStateRow).where(AlertStateRow.level != "ok")))

    def for_owner(self, owner_id: str, rule_id: str | None = None) -> list[AlertStateRow]:
        query = select(AlertStateRow).where(AlertStateRow.owner_id == owner_id)
        if rule_id:
            query = query.where(AlertStateRow.rule_id == rule_id)
        return list(self.session.scalars(query.order_by(AlertStateRow.rule_id)))


class HistoryStore:
    def __init__(self, session: Session):
        self.session = session

    def add(self, **values) -> AlertRow:
        row = AlertRow(**values)
        self.session.add(row)
        self.session.flush()
        return row

    def search(
        self,
        owner_id: str,
        device_id: str | None = None,
        rule_id: str | None = None,
        levels: Sequence[str] = (),
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        query = select(AlertRow).where(AlertRow.owner_id == owner_id)
        if device_id:
            query = query.where(AlertRow.device_id == device_id)
        if rule_id:
            query = query.where(AlertRow.rule_id == rule_id)
        if levels:
            query = query.where(AlertRow.level.in_(list(levels)))
        if since_ms is not None:
            query = query.where(AlertRow.event_ms >= since_ms)
        if until_ms is not None:
            query = query.where(AlertRow.event_ms < until_ms)
        query = query.order_by(AlertRow.event_ms.desc(), AlertRow.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def deliveries(self, alert_ids: Sequence[int]) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return found
        rows = self.session.scalars(
            select(OutboxRow).where(OutboxRow.alert_id.in_(list(alert_ids))).order_by(OutboxRow.id)
        )
        for row in rows:
            found[row.alert_id].append(
                {
                    "channel": row.channel,
                    "recipient": row.recipient,
                    "status": row.status,
                    "attempts": row.attempts,
                    "error": row.last_error,
                    "sent_at": row.sent_ms,
                }
            )
        return found


class OutboxStore:
    def __init__(self, session: Session):
        self.session = session

    def add(self, alert_id: int, channel: str, recipient: str, message: dict) -> OutboxRow:
        stamp = now_ms()
        row = OutboxRow(
            alert_id=alert_id,
            channel=channel,
            recipient=recipient,
            status="pending",
            attempts=0,
            next_attempt_ms=stamp,
            created_ms=stamp,
            message=message,
        )
        self.session.add(row)
        return row

    def claim_due(self, now: int, lease_ms: int, limit: int = 20) -> list[OutboxRow]:
        """Due pending messages, leased to this worker: another replica (or this one
        after a crash) takes them again only once the lease has run out."""
        query = (
            select(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_ms <= now)
            .order_by(OutboxRow.next_attempt_ms, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(self.session.scalars(query))
        for row in rows:
            row.attempts += 1
            row.next_attempt_ms = now + lease_ms
        self.session.flush()
        return rows

    def mark_sent(self, outbox_id: int, now: int) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(status="sent", sent_ms=now, last_error=None)
        )

    def mark_failed(self, outbox_id: int, error: str) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(status="failed", last_error=error[:2000])
        )

    def retry_later(self, outbox_id: int, at_ms: int, error: str) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(next_attempt_ms=at_ms, last_error=error[:2000])
        )

    def next_due_ms(self) -> int | None:
        return self.session.scalar(
            select(func.min(OutboxRow.next_attempt_ms)).where(OutboxRow.status == "pending")
        )

    def counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        )
        return {status: count for status, count in rows}
