"""The alerts service's tables: rules, the state per (rule, device), the history of
notifications, and the outbox of messages still to deliver."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fieldline_backend.common.db import Base


class AlertRuleRow(Base):
    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean)
    spec: Mapped[dict] = mapped_column(JSON)  # the validated rule (rules.validate_rule)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class AlertStateRow(Base):
    """Where one (rule, device) stands, and what people were last told about it."""

    __tablename__ = "alert_states"

    rule_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))  # as last reported by a check
    notified_level: Mapped[str] = mapped_column(String(8))  # as last told to people
    notified_ms: Mapped[int | None] = mapped_column(BigInteger)
    changed_ms: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[dict] = mapped_column(JSON)  # the newest notification, for repeats


class AlertRow(Base):
    """One notification as sent: the alert history people browse."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    rule_id: Mapped[str] = mapped_column(String(40), index=True)
    rule_name: Mapped[str] = mapped_column(String(200))
    device_key: Mapped[str] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device_name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # alert, repeat, recovery, late, test
    level: Mapped[str] = mapped_column(String(8), index=True)
    previous_level: Mapped[str] = mapped_column(String(8))
    field: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[dict | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    event_ms: Mapped[int] = mapped_column(BigInteger, index=True)  # when it happened
    created_ms: Mapped[int] = mapped_column(BigInteger)  # when it was decided
    details: Mapped[dict] = mapped_column(JSON)


class OutboxRow(Base):
    """One message to one recipient; delivered at least once, marked when the mail
    server (or webhook) took it. Permanent failures stay here with their reason."""

    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # email, webhook
    recipient: Mapped[str] = mapped_column(String(2100))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[dict] = mapped_column(JSON)  # subject, text, html, json body
