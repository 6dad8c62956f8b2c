"""The SQL of commands (synchronous; called from a thread)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from fieldline_backend.common.db import Database
from fieldline_backend.devices.command_schemas import FINAL, Command, CommandOutcome
from fieldline_backend.devices.models import DeviceCommand
from fieldline_backend.devices.repository import _utc

KEEP_COMMANDS = 200  # per device; older finished ones are history nobody reads


def _command(record: DeviceCommand) -> Command:
    return Command(
        id=record.id,
        device_id=record.device_id,
        name=record.name,
        args=dict(record.args or {}),
        status=record.status,
        result=record.result,
        error=record.error,
        created_at=_utc(record.created_at),
        expires_at=_utc(record.expires_at),
        delivered_at=_utc(record.delivered_at) if record.delivered_at else None,
        finished_at=_utc(record.finished_at) if record.finished_at else None,
    )


class CommandRepository:
    def __init__(self, database: Database):
        self.database = database

    def expire(self, now: datetime, device_id: str | None = None) -> None:
        """Pending commands past their time are expired (the device never took them)."""
        where = [DeviceCommand.status == "pending", DeviceCommand.expires_at < now]
        if device_id is not None:
            where.append(DeviceCommand.device_id == device_id)
        with self.database.session() as session:
            session.execute(
                update(DeviceCommand).where(*where).values(status="expired", finished_at=now)
            )

    def pending_count(self, device_id: str) -> int:
        with self.database.session() as session:
            return session.scalar(
                select(func.count()).where(
                    DeviceCommand.device_id == device_id,
                    DeviceCommand.status.in_(("pending", "delivered")),
                )
            )

    def add(self, command: Command) -> None:
        with self.database.session() as session:
            session.add(
                DeviceCommand(
                    id=command.id,
                    device_id=command.device_id,
                    name=command.name,
                    args=command.args,
                    status=command.status,
                    created_at=command.created_at,
                    expires_at=command.expires_at,
                )
            )
            old = (
                select(DeviceCommand.id)
                .where(DeviceCommand.device_id == command.device_id)
                .order_by(DeviceCommand.created_at.desc())
                .offset(KEEP_COMMANDS)
            )
            session.execute(
                delete(DeviceCommand).where(
                    DeviceCommand.id.in_(old.scalar_subquery()), DeviceCommand.status.in_(FINAL)
                )
            )

    def get(self, device_id: str, command_id: str) -> Command | None:
        with self.database.session() as session:
            record = session.get(DeviceCommand, command_id)
            if record is None or record.device_id != device_id:
                return None
            return _command(record)

    def recent(self, device_id: str, limit: int) -> list[Command]:
        with self.database.session() as session:
            records = session.scalars(
                select(DeviceCommand)
                .where(DeviceCommand.device_id == device_id)
                .order_by(DeviceCommand.created_at.desc(), DeviceCommand.id)
                .limit(limit)
            ).all()
            return [_command(r) for r in records]

    def all_pending(self) -> list[Command]:
        with self.database.session() as session:
            records = session.scalars(
                select(DeviceCommand).where(DeviceCommand.status == "pending")
            ).all()
            return [_command(r) for r in records]

    def report(self, device_id: str, outcome: CommandOutcome) -> bool:
        """Apply what the device said; False when there is no such command of it."""
        at = outcome.at
        with self.database.session() as session:
            record = session.get(DeviceCommand, outcome.id)
            if record is None or record.device_id != device_id:
                return False
            if outcome.state != "delivered":  # the outcome: final, whatever came before
                succeeded = outcome.state == "succeeded"
                record.status = outcome.state
                record.result = outcome.result if succeeded else None
                record.error = None if succeeded else (outcome.error or "failed")
                record.finished_at = at
                record.delivered_at = record.delivered_at or at
            elif record.status == "pending":  # a late or repeated "delivered" changes nothing
                record.status = "delivered"
                record.delivered_at = at
            return True

    def forget(self, device_id: str) -> None:
        with self.database.session() as session:
            session.execute(delete(DeviceCommand).where(DeviceCommand.device_id == device_id))
