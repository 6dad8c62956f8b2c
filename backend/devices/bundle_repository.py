"""The SQL of OTA bundles (synchronous; called from a thread)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from fieldline_backend.common.db import Database
from fieldline_backend.devices.models import OtaBundle, OtaBundleFile, OtaRollout
from fieldline_backend.devices.ota_schemas import RUNNING, BundleFileInfo, BundleInfo
from fieldline_backend.devices.repository import _utc


class BundleInUse(Exception):
    """A running rollout offers this bundle."""


@dataclass(frozen=True)
class StoredFile:
    path: str
    sha256: str
    data: bytes


@dataclass(frozen=True)
class NewBundle:
    """A parsed bundle, as fieldline_provision.bundle.read_bundle made it."""

    id: str
    version: str
    mpy: str | None
    manifest: bytes
    size: int  # bytes of the tar
    files: tuple[StoredFile, ...]


def _info(record: OtaBundle) -> BundleInfo:
    # The manifest says every file's size and hash: no need to load the files' bytes.
    files = json.loads(record.manifest).get("files", [])
    return BundleInfo(
        id=record.id,
        version=record.version,
        mpy=record.mpy,
        files=[BundleFileInfo(path=f["path"], size=f["size"], sha256=f["sha256"]) for f in files],
        size=record.size,
        created_at=_utc(record.created_at),
    )


class BundleRepository:
    def __init__(self, database: Database):
        self.database = database

    def add(self, owner_id: int, bundle: NewBundle, now: datetime) -> tuple[BundleInfo, bool]:
        """(the stored bundle, True when it is new); the same tar twice is stored once."""
        known = self.get(owner_id, bundle.id)
        if known is not None:
            return known, False
        try:
            with self.database.session() as session:
                record = OtaBundle(
                    owner_id=owner_id,
                    id=bundle.id,
                    version=bundle.version,
                    mpy=bundle.mpy,
                    manifest=bundle.manifest,
                    size=bundle.size,
                    created_at=now,
                )
                session.add(record)
                session.add_all(
                    OtaBundleFile(
                        owner_id=owner_id, bundle_id=bundle.id, path=f.path, sha256=f.sha256,
                        data=f.data,
                    )
                    for f in bundle.files
                )  # fmt: skip
                session.flush()
                return _info(record), True
        except IntegrityError:  # a concurrent upload of the same tar stored it first
            known = self.get(owner_id, bundle.id)
            if known is None:
                raise
            return known, False

    def get(self, owner_id: int, bundle_id: str) -> BundleInfo | None:
        with self.database.session() as session:
            record = session.get(OtaBundle, (owner_id, bundle_id))
            return _info(record) if record else None

    def list_for(self, owner_id: int, limit: int) -> list[BundleInfo]:
        with self.database.session() as session:
            records = session.scalars(
                select(OtaBundle)
                .where(OtaBundle.owner_id == owner_id)
                .order_by(OtaBundle.created_at.desc(), OtaBundle.id)
                .limit(limit)
            ).all()
            return [_info(r) for r in records]

    def delete(self, owner_id: int, bundle_id: str) -> bool:
        """False when there is no such bundle of this owner; BundleInUse while a running
        rollout offers it."""
        with self.database.session() as session:
            record = session.get(OtaBundle, (owner_id, bundle_id))
            if record is None:
                return False
            running = session.scalar(
                select(func.count()).where(
                    OtaRollout.owner_id == owner_id,
                    OtaRollout.bundle_id == bundle_id,
                    OtaRollout.state.in_(RUNNING),
                )
            )
            if running:
                raise BundleInUse(bundle_id)
            session.execute(
                delete(OtaBundleFile).where(
                    OtaBundleFile.owner_id == owner_id, OtaBundleFile.bundle_id == bundle_id
                )
            )
            session.delete(record)
            return True

    def manifest_size(self, owner_id: int, bundle_id: str) -> int | None:
        with self.database.session() as session:
            return session.scalar(
                select(func.length(OtaBundle.manifest)).where(
                    OtaBundle.owner_id == owner_id, OtaBundle.id == bundle_id
                )
            )

    def contents(self, owner_id: int, bundle_id: str) -> tuple[bytes, list[StoredFile]] | None:
        """The manifest and every file's bytes (for the bundle server)."""
        with self.database.session() as session:
            record = session.get(OtaBundle, (owner_id, bundle_id))
            if record is None:
                return None
            files = session.scalars(
                select(OtaBundleFile).where(
                    OtaBundleFile.owner_id == owner_id, OtaBundleFile.bundle_id == bundle_id
                )
            ).all()
            return bytes(record.manifest), [
                StoredFile(f.path, f.sha256, bytes(f.data)) for f in files
            ]
