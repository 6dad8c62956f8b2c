"""mqtt_auth's tables: one MQTT account per device and its topic rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldline_backend.common.db import Base


class MqttAccount(Base):
    """A device's MQTT account: client id = username = device id."""

    __tablename__ = "mqtt_accounts"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # "metadata" is reserved on declarative classes; the column keeps the plain name.
    device_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # Mosquitto $7$ PBKDF2-SHA512
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    rules: Mapped[list[MqttAclRule]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )


class MqttAclRule(Base):
    """One topic filter an account may publish to or subscribe to (and receive from)."""

    __tablename__ = "mqtt_acl_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("mqtt_accounts.client_id", ondelete="CASCADE"), index=True
    )
    access: Mapped[str] = mapped_column(String(16))  # "publish" | "subscribe"
    topic: Mapped[str] = mapped_column(String(255))

    account: Mapped[MqttAccount] = relationship(back_populates="rules")
