"""devices' table: the registry of devices and who owns them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from fieldline_backend.common.db import Base


class DeviceRecord(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # dev-<12 base32 chars>
    # The gateway's user id; no foreign key because users live in another service's tables.
    owner_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(128))
    # "metadata" is reserved on declarative classes; the column keeps the plain name.
    device_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceConfigVersion(Base):
    """One desired configuration of a device (docs/fleet.md): each PUT makes a version,
    the whole merged config; the newest is what the device is sent (retained)."""

    __tablename__ = "device_config_versions"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceConfigReport(Base):
    """What the device last said it did with a version: applied or rejected (and why)."""

    __tablename__ = "device_config_reports"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceCommand(Base):
    """One command sent to a device and what became of it (docs/fleet.md)."""

    __tablename__ = "device_commands"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # cmd-<base32>
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict | list | str | int | float | bool | None] = mapped_column(
        JSON, nullable=True
    )
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OtaBundle(Base):
    """An uploaded bundle (docs/ota.md): its manifest as stored in the tar, which its id
    hashes. Keyed by owner too: two users uploading the same tar each have their own."""

    __tablename__ = "ota_bundles"

    owner_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the manifest
    version: Mapped[str] = mapped_column(String(32))
    mpy: Mapped[str | None] = mapped_column(String(16), nullable=True)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)  # bytes of the tar
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OtaBundleFile(Base):
    __tablename__ = "ota_bundle_files"

    owner_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class OtaRollout(Base):
    """A bundle offered to a set of devices, canary first (docs/ota.md)."""

    __tablename__ = "ota_rollouts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # ro-<base32>
    owner_id: Mapped[int] = mapped_column(Integer, index=True)
    bundle_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    canary_fraction: Mapped[float] = mapped_column(Float)
    max_failure_ratio: Mapped[float] = mapped_column(Float)
    allow_downgrade: Mapped[bool] = mapped_column(Boolean)
    halted_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OtaRolloutDevice(Base):
    """One device's entry in a rollout: where its update is."""

    __tablename__ = "ota_rollout_devices"

    rollout_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    canary: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceRunningVersion(Base):
    """The SDK/app version a device last said it runs (its `running` or `confirmed`)."""

    __tablename__ = "device_running_versions"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
