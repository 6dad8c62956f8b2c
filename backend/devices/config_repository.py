"""The SQL of desired configs and device reports (synchronous; called from a thread)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from fieldline_backend.common.db import Database
from fieldline_backend.devices.config_schemas import DesiredConfig, ReportedConfig
from fieldline_backend.devices.models import DeviceConfigReport, DeviceConfigVersion
from fieldline_backend.devices.repository import _utc

KEEP_VERSIONS = 20  # older versions are history nobody reads; the newest is what counts


class VersionTaken(Exception):
    """Another change made this version number first: merge again on the newer one."""


def _desired(record: DeviceConfigVersion) -> DesiredConfig:
    return DesiredConfig(
        version=record.version, config=dict(record.config), created_at=_utc(record.created_at)
    )


class ConfigRepository:
    def __init__(self, database: Database):
        self.database = database

    def desired(self, device_id: str) -> DesiredConfig | None:
        with self.database.session() as session:
            record = session.scalars(
                select(DeviceConfigVersion)
                .where(DeviceConfigVersion.device_id == device_id)
                .order_by(DeviceConfigVersion.version.desc())
                .limit(1)
            ).first()
            return _desired(record) if record else None

    def all_desired(self) -> list[tuple[str, DesiredConfig]]:
        """Every device's newest version (to publish again when the service starts)."""
        with self.database.session() as session:
            newest = (
                select(DeviceConfigVersion.device_id, func.max(DeviceConfigVersion.version))
                .group_by(DeviceConfigVersion.device_id)
                .subquery()
            )
            records = session.scalars(
                select(DeviceConfigVersion).join(
                    newest,
                    (DeviceConfigVersion.device_id == newest.c[0])
                    & (DeviceConfigVersion.version == newest.c[1]),
                )
            ).all()
            return [(r.device_id, _desired(r)) for r in records]

    def add(self, device_id: str, version: int, config: dict, now: datetime) -> DesiredConfig:
        """Store `version`; VersionTaken when a concurrent change stored it first."""
        try:
            with self.database.session() as session:
                record = DeviceConfigVersion(
                    device_id=device_id, version=version, config=config, created_at=now
                )
                session.add(record)
                session.flush()
                session.execute(
                    delete(DeviceConfigVersion).where(
                        DeviceConfigVersion.device_id == device_id,
                        DeviceConfigVersion.version <= version - KEEP_VERSIONS,
                    )
                )
                return _desired(record)
        except IntegrityError as error:
            raise VersionTaken(version) from error

    def reported(self, device_id: str) -> ReportedConfig | None:
        with self.database.session() as session:
            record = session.get(DeviceConfigReport, device_id)
            if record is None:
                return None
            return ReportedConfig(
                version=record.version,
                status=record.status,
                error=record.error,
                at=_utc(record.reported_at),
            )

    def report(self, device_id: str, report: ReportedConfig) -> None:
        """Keep the newest report (a redelivered older one does not replace it)."""
        with self.database.session() as session:
            record = session.get(DeviceConfigReport, device_id)
            if record is None:
                session.add(
                    DeviceConfigReport(
                        device_id=device_id,
                        version=report.version,
                        status=report.status,
                        error=report.error,
                        reported_at=report.at,
                    )
                )
                return
            if _utc(record.reported_at) > report.at:
                return
            record.version = report.version
            record.status = report.status
            record.error = report.error
            record.reported_at = report.at

    def forget(self, device_id: str) -> None:
        with self.database.session() as session:
            session.execute(
                delete(DeviceConfigVersion).where(DeviceConfigVersion.device_id == device_id)
            )
            session.execute(
                delete(DeviceConfigReport).where(DeviceConfigReport.device_id == device_id)
            )
