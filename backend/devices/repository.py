"""The device registry's SQL (synchronous; the service calls it from a worker thread)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from fieldline_backend.common.db import Database
from fieldline_backend.devices.models import DeviceRecord
from fieldline_backend.devices.schemas import Device


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def to_device(record: DeviceRecord) -> Device:
    return Device(
        id=record.id,
        name=record.name,
        metadata=dict(record.device_metadata or {}),
        owner_id=record.owner_id,
        enabled=record.enabled,
        created_at=_utc(record.created_at),
        updated_at=_utc(record.updated_at),
    )


class DeviceRepository:
    def __init__(self, database: Database):
        self.database = database

    def insert(self, device: Device) -> Device:
        with self.database.session() as session:
            session.add(
                DeviceRecord(
                    id=device.id,
                    owner_id=device.owner_id,
                    name=device.name,
                    device_metadata=device.metadata,
                    enabled=device.enabled,
                    created_at=device.created_at,
                    updated_at=device.updated_at,
                )
            )
        return device

    def get(self, device_id: str) -> Device | None:
        with self.database.session() as session:
            record = session.get(DeviceRecord, device_id)
            return to_device(record) if record else None

    def list_for(self, owner_id: int) -> list[Device]:
        with self.database.session() as session:
            records = session.scalars(
                select(DeviceRecord)
                .where(DeviceRecord.owner_id == owner_id)
                .order_by(DeviceRecord.created_at, DeviceRecord.id)
            ).all()
            return [to_device(r) for r in records]

    def update(self, device_id: str, changes: dict, now: datetime) -> Device | None:
        with self.database.session() as session:
            record = session.get(DeviceRecord, device_id)
            if record is None:
                return None
            if "name" in changes:
                record.name = changes["name"]
            if "metadata" in changes:
                record.device_metadata = dict(changes["metadata"])
            if "enabled" in changes:
                record.enabled = changes["enabled"]
            record.updated_at = now
            session.flush()
            return to_device(record)

    def delete(self, device_id: str) -> bool:
        with self.database.session() as session:
            result = session.execute(delete(DeviceRecord).where(DeviceRecord.id == device_id))
            return result.rowcount == 1
