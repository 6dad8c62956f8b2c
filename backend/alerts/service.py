"""The alerts service's logic: rules, the decision per (rule, device), the history and
the messages put in the outbox. No HTTP here; the database and settings come in."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError

from fieldline_backend.alerts.decisions import NOTIFIABLE, decide, repeat_due
from fieldline_backend.alerts.messages import compose, subject_for
from fieldline_backend.alerts.models import AlertStateRow
from fieldline_backend.alerts.payloads import Notification
from fieldline_backend.alerts.rules import WEBHOOK_PREFIX, rule_to_input, validate_rule
from fieldline_backend.alerts.store import (
    HistoryStore,
    OutboxStore,
    RuleStore,
    StateStore,
    now_ms,
    public_rule,
    rule_json,
)
from fieldline_backend.common.db import Database

log = logging.getLogger(__name__)


class RuleNotFound(LookupError):
    pass


class AlertService:
    def __init__(self, database: Database, base_url: str, on_enqueued=None):
        self.database = database
        self.base_url = base_url
        self.on_enqueued = on_enqueued or (lambda: None)  # wakes the outbox worker

    # ---- rules -------------------------------------------------------------------------

    def create_rule(self, owner_id: str, data: dict) -> dict:
        spec = validate_rule(data)
        with self.database.session() as session:
            return public_rule(RuleStore(session).add(owner_id, spec))

    def list_rules(self, owner_id: str | None, enabled: bool | None = None) -> list[dict]:
        with self.database.session() as session:
            rows = RuleStore(session).list(owner_id, enabled)
            if owner_id is None:  # the monitor: it needs the normal form and the owner
                return [rule_json(row) for row in rows]
            return [public_rule(row) for row in rows]

    def get_rule(self, rule_id: str, owner_id: str) -> dict:
        with self.database.session() as session:
            row = RuleStore(session).get(rule_id, owner_id)
            if row is None:
                raise RuleNotFound(rule_id)
            return public_rule(row)

    def change_rule(self, rule_id: str, owner_id: str, patch: dict) -> dict:
        with self.database.session() as session:
            store = RuleStore(session)
            row = store.get(rule_id, owner_id)
            if row is None:
                raise RuleNotFound(rule_id)
            merged = {**rule_to_input(row.spec), **patch}
            # Choosing devices one way clears the other.
            if "device_id" in patch and patch["device_id"] is not None:
                merged.pop("selector", None)
            if "selector" in patch and patch["selector"] is not None:
                merged.pop("device_id", None)
            merged = {k: v for k, v in merged.items() if v is not None or k == "repeat_every"}
            return public_rule(store.replace(row, validate_rule(merged)))

    def delete_rule(self, rule_id: str, owner_id: str) -> None:
        with self.database.session() as session:
            store = RuleStore(session)
            row = store.get(rule_id, owner_id)
            if row is None:
                raise RuleNotFound(rule_id)
            store.remove(row)

    # ---- notifications -----------------------------------------------------------------

    def receive(self, notifications: Iterable[Notification]) -> list[dict]:
        """Decide on each notification; unknown rules are reported, not raised, so one
        stale rule id does not drop a whole batch."""
        results = []
        for notification in notifications:
            for attempt in range(3):
                try:
                    results.append(self._receive_one(notification))
                    break
                except IntegrityError:
                    # Two deciders created the same new state at once: decide again.
                    if attempt == 2:
                        raise
        if any(r.get("sent") for r in results):
            self.on_enqueued()
        return results

    def _receive_one(self, n: Notification) -> dict:
        with self.database.session() as session:
            rule_row = RuleStore(session).get(n.rule_id)
            if rule_row is None:
                return {"rule_id": n.rule_id, "device": n.device_key, "error": "no such rule"}
            rule = rule_row.spec | {"id": rule_row.id}
            now = now_ms()
            if n.kind == "late":
                self._record(session, rule_row.owner_id, rule, n, "late", "ok", n.level, now)
                return {"rule_id": n.rule_id, "device": n.device_key, "sent": "late"}
            states = StateStore(session)
            state = states.get_for_update(rule_row.id, n.device_key)
            if state is None:
                state = AlertStateRow(
                    rule_id=rule_row.id,
                    device_key=n.device_key,
                    owner_id=rule_row.owner_id,
                    device_id=n.device_id,
                    kind=rule["kind"],
                    level="ok",
                    notified_level="ok",
                    notified_ms=None,
                    changed_ms=now,
                    last={},
                )
                session.add(state)
            if state.level != n.level:
                state.changed_ms = now
            state.level = n.level
            state.last = n.as_json()
            held = (
                rule["kind"] != "deadman"
                and n.device_id is not None
                and states.deadman_standing(rule_row.owner_id, n.device_id)
            )
            if held:
                # The device is known offline: its deadman alert speaks for it.
                session.flush()
                return {"rule_id": n.rule_id, "device": n.device_key, "held": True}
            sent = self._apply(session, rule_row.owner_id, rule, state, n, now)
            if rule["kind"] == "deadman" and n.level == "ok" and n.device_id:
                session.flush()
                # Back online: what its value rules said meanwhile is told now.
                for held_state in states.held_for_device(rule_row.owner_id, n.device_id):
                    held_rule = RuleStore(session).get(held_state.rule_id)
                    if held_rule is not None:
                        held_n = Notification.from_json(held_state.last)
                        spec = held_rule.spec | {"id": held_rule.id}
                        self._apply(session, held_rule.owner_id, spec, held_state, held_n, now)
            return {"rule_id": n.rule_id, "device": n.device_key, "sent": sent}

    def _apply(self, session, owner_id, rule, state, n: Notification, now: int) -> str | None:
        decision = decide(rule, state.notified_level, state.notified_ms, n.level, now)
        previous = state.notified_level
        state.notified_level, state.notified_ms = decision.notified_level, decision.notified_ms
        if decision.kind is None:
            return None
        self._record(session, owner_id, rule, n, decision.kind, previous, n.level, now)
        return decision.kind

    def _record(self, session, owner_id, rule, n: Notification, kind, previous, level, now):
        """One history entry and one outbox message per recipient, in the same
        transaction as the state change: decided once, sent at least once."""
        details = dict(n.details)
        details.setdefault("tags", n.tags)
        threshold = None
        if rule.get("condition") and level in ("warn", "crit"):
            threshold = {"level": level, "value": rule.get(level)}
        elif details.get("threshold") is not None:
            threshold = {"level": level, "value": details["threshold"]}
        alert = {
            "owner_id": owner_id,
            "rule_id": rule["id"],
            "rule_name": rule["name"][:200],
            "device_key": n.device_key,
            "device_id": n.device_id,
            "device_name": (n.device_name or n.device_id or n.device_key)[:200],
            "kind": kind,
            "level": level if kind != "recovery" else "ok",
            "previous_level": previous,
            "field": n.field or rule.get("field"),
            "value": n.value,
            "threshold": threshold,
            "message": n.message or "",
            "event_ms": n.time_ms,
            "created_ms": now,
            "details": details,
        }
        alert["subject"] = subject_for(alert, rule)[:900]
        row = HistoryStore(session).add(**alert)
        message = compose(alert | {"id": row.id}, rule, self.base_url)
        outbox = OutboxStore(session)
        for recipient in rule["recipients"]:
            if recipient.startswith(WEBHOOK_PREFIX):
                outbox.add(row.id, "webhook", recipient[len(WEBHOOK_PREFIX) :], message)
            else:
                outbox.add(row.id, "email", recipient, message)
        return row

    def send_repeats(self) -> int:
        """Repeat firing alerts whose repeat_every has passed (called on a timer)."""
        sent = 0
        now = now_ms()
        with self.database.session() as session:
            rules = RuleStore(session)
            states = StateStore(session)
            for state in states.firing():
                rule_row = rules.get(state.rule_id)
                if rule_row is None or not rule_row.enabled:
                    continue
                rule = rule_row.spec | {"id": rule_row.id}
                if not repeat_due(rule, state.notified_level, state.notified_ms, now):
                    continue
                if (
                    rule["kind"] != "deadman"
                    and state.device_id
                    and states.deadman_standing(state.owner_id, state.device_id)
                ):
                    continue
                n = Notification.from_json(state.last)
                self._record(
                    session, state.owner_id, rule, n, "repeat", state.level, state.level, now
                )
                state.notified_ms = now
                sent += 1
        if sent:
            self.on_enqueued()
        return sent

    def send_test(self, rule_id: str, owner_id: str) -> dict:
        with self.database.session() as session:
            rule_row = RuleStore(session).get(rule_id, owner_id)
            if rule_row is None:
                raise RuleNotFound(rule_id)
            rule = rule_row.spec | {"id": rule_row.id}
            n = Notification(
                rule_id=rule_row.id,
                check_name=rule["name"],
                level="info",
                message="A test notification: this rule's alerts will reach you like this.",
                time_ms=now_ms(),
                device_key="test",
                device_id=rule.get("device_id"),
                device_name=rule.get("device_id") or "test",
            )
            row = self._record(session, owner_id, rule, n, "test", "ok", "info", now_ms())
            alert_id = row.id
        self.on_enqueued()
        return {"alert_id": alert_id, "recipients": rule["recipients"]}

    # ---- history -----------------------------------------------------------------------

    def history(self, owner_id: str, **filters) -> list[dict]:
        with self.database.session() as session:
            store = HistoryStore(session)
            rows = store.search(owner_id, **filters)
            deliveries = store.deliveries([row.id for row in rows])
            return [alert_json(row, deliveries.get(row.id, [])) for row in rows]

    def standing(self) -> list[dict]:
        """What the monitor needs after a restart: the levels it had reported, not ok."""
        with self.database.session() as session:
            return [
                {"rule_id": s.rule_id, "device": s.device_key, "level": s.level}
                for s in StateStore(session).standing()
            ]

    def states(self, owner_id: str, rule_id: str | None = None) -> list[dict]:
        with self.database.session() as session:
            return [
                {
                    "rule_id": s.rule_id,
                    "device": s.device_key,
                    "device_id": s.device_id,
                    "level": s.level,
                    "notified_level": s.notified_level,
                    "changed_at": s.changed_ms,
                }
                for s in StateStore(session).for_owner(owner_id, rule_id)
            ]


def alert_json(row, deliveries: list[dict]) -> dict:
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "device_id": row.device_id,
        "device_name": row.device_name,
        "device": row.device_key,
        "kind": row.kind,
        "level": row.level,
        "previous_level": row.previous_level,
        "field": row.field,
        "value": row.value,
        "threshold": row.threshold,
        "message": row.message,
        "subject": row.subject,
        "time": row.event_ms,
        "created_at": row.created_ms,
        "details": row.details,
        "deliveries": deliveries,
        "firing": row.level in NOTIFIABLE and row.kind in ("alert", "repeat"),
    }
