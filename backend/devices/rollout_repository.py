"""The SQL of rollouts, their devices' entries and the devices' running versions
(synchronous; called from a thread). A change to a rollout and the step it causes
(rollout_rules.next_step) are one transaction, the rollout's row locked for it, so two
reports arriving together (storage workers, devices replicas) never both miss the
transition their two devices complete."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fieldline_backend.common.db import Database
from fieldline_backend.devices.models import (
    DeviceRecord,
    DeviceRunningVersion,
    OtaBundle,
    OtaRollout,
    OtaRolloutDevice,
)
from fieldline_backend.devices.ota_schemas import (
    RUNNING,
    TERMINAL,
    DeviceRolloutEntry,
    DeviceUpdate,
    OtaReport,
    Rollout,
    RolloutDevice,
)
from fieldline_backend.devices.repository import _utc
from fieldline_backend.devices.rollout_rules import EntryView, has_offer, next_step, untaken

HOLDING = ("offered", "downloading", "staged", "rebooting")  # states that may hold an offer


@dataclass(frozen=True)
class Offer:
    """What devices/<id>/ota carries for a rollout (docs/ota.md)."""

    rollout: str
    version: str
    bundle: str
    size: int  # bytes of the manifest
    allow_downgrade: bool

    def payload(self) -> dict:
        return {
            "rollout": self.rollout,
            "version": self.version,
            "bundle": self.bundle,
            "size": self.size,
            "allow_downgrade": self.allow_downgrade,
        }


@dataclass
class Publishes:
    """The retained messages a change calls for, sent after its transaction."""

    offer: Offer | None = None
    offer_to: list[str] = field(default_factory=list)
    clear: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ServedBundle:
    owner_id: int
    bundle_id: str


class DevicesBusy(Exception):
    def __init__(self, devices: list[str]):
        super().__init__(", ".join(devices))
        self.devices = devices


def _entry(record: OtaRolloutDevice) -> RolloutDevice:
    return RolloutDevice(
        device_id=record.device_id,
        canary=record.canary,
        state=record.state,
        progress=record.progress,
        error=record.error,
        updated_at=_utc(record.updated_at),
    )


def _rollout(record: OtaRollout, entries: list[OtaRolloutDevice]) -> Rollout:
    return Rollout(
        id=record.id,
        bundle_id=record.bundle_id,
        version=record.version,
        state=record.state,
        canary_fraction=record.canary_fraction,
        max_failure_ratio=record.max_failure_ratio,
        allow_downgrade=record.allow_downgrade,
        counts=dict(Counter(e.state for e in entries)),
        devices=[_entry(e) for e in sorted(entries, key=lambda e: (not e.canary, e.device_id))],
        created_at=_utc(record.created_at),
        updated_at=_utc(record.updated_at),
        halted_reason=record.halted_reason,
    )


def _entries(session: Session, rollout_id: str) -> list[OtaRolloutDevice]:
    # populate_existing: rows read before the rollout's lock was taken are read again.
    return list(
        session.scalars(
            select(OtaRolloutDevice)
            .where(OtaRolloutDevice.rollout_id == rollout_id)
            .execution_options(populate_existing=True)
        )
    )


def _locked(session: Session, rollout_id: str) -> OtaRollout | None:
    """The rollout's row, locked for this transaction (PostgreSQL; SQLite has one writer
    and the engine serializes its changes), as committed when the lock was granted."""
    return session.scalars(
        select(OtaRollout)
        .where(OtaRollout.id == rollout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _offer(session: Session, rollout: OtaRollout) -> Offer:
    size = session.scalar(
        select(func.length(OtaBundle.manifest)).where(
            OtaBundle.owner_id == rollout.owner_id, OtaBundle.id == rollout.bundle_id
        )
    )
    return Offer(rollout.id, rollout.version, rollout.bundle_id, size or 0, rollout.allow_downgrade)


def _advance(session: Session, rollout: OtaRollout, now: datetime, done: Publishes) -> None:
    """Apply the rollout's next step (if any) to the rows; note what to publish."""
    entries = _entries(session, rollout.id)
    views = [EntryView(e.device_id, e.canary, e.state) for e in entries]
    step = next_step(rollout.state, rollout.max_failure_ratio, views)
    if step is None:
        return
    rollout.state, rollout.updated_at = step.state, now
    if step.reason:
        rollout.halted_reason = step.reason
    offered = set(step.offer)
    for entry in entries:
        if entry.device_id in offered:
            entry.state, entry.updated_at = "offered", now
    if offered:
        done.offer = _offer(session, rollout)
        done.offer_to += step.offer
    done.clear += step.withdraw


class RolloutRepository:
    def __init__(self, database: Database):
        self.database = database

    # ---- creating and reading ---------------------------------------------------------

    def owned(self, owner_id: int, device_ids: list[str]) -> set[str]:
        with self.database.session() as session:
            return set(
                session.scalars(
                    select(DeviceRecord.id).where(
                        DeviceRecord.owner_id == owner_id, DeviceRecord.id.in_(device_ids)
                    )
                )
            )

    def create(
        self, rollout: OtaRollout, canaries: set[str], devices: list[str]
    ) -> tuple[Rollout, Publishes]:
        """Store the rollout with its canaries offered; DevicesBusy when a device has an
        unfinished entry in a running rollout."""
        now = rollout.created_at
        with self.database.session() as session:
            busy = session.scalars(
                select(OtaRolloutDevice.device_id)
                .join(OtaRollout, OtaRollout.id == OtaRolloutDevice.rollout_id)
                .where(
                    OtaRolloutDevice.device_id.in_(devices),
                    OtaRolloutDevice.state.not_in(TERMINAL),
                    OtaRollout.state.in_(RUNNING),
                )
            ).all()
            if busy:
                raise DevicesBusy(sorted(set(busy)))
            session.add(rollout)
            entries = [
                OtaRolloutDevice(
                    rollout_id=rollout.id,
                    device_id=device_id,
                    canary=device_id in canaries,
                    state="offered" if device_id in canaries else "queued",
                    updated_at=now,
                )
                for device_id in devices
            ]
            session.add_all(entries)
            session.flush()
            offer = _offer(session, rollout)
            return _rollout(rollout, entries), Publishes(offer, sorted(canaries))

    def get(self, owner_id: int, rollout_id: str) -> Rollout | None:
        with self.database.session() as session:
            record = session.get(OtaRollout, rollout_id)
            if record is None or record.owner_id != owner_id:
                return None
            return _rollout(record, _entries(session, rollout_id))

    def list_for(self, owner_id: int, limit: int) -> list[Rollout]:
        with self.database.session() as session:
            records = session.scalars(
                select(OtaRollout)
                .where(OtaRollout.owner_id == owner_id)
                .order_by(OtaRollout.created_at.desc(), OtaRollout.id)
                .limit(limit)
            ).all()
            return [_rollout(r, _entries(session, r.id)) for r in records]

    def _current(self, session: Session, device_id: str):
        """The device's newest entry and its rollout (a device's current rollout)."""
        return session.execute(
            select(OtaRolloutDevice, OtaRollout)
            .join(OtaRollout, OtaRollout.id == OtaRolloutDevice.rollout_id)
            .where(OtaRolloutDevice.device_id == device_id)
            .order_by(OtaRollout.created_at.desc(), OtaRollout.id.desc())
            .limit(1)
        ).first()

    def update_of(self, device_id: str) -> DeviceUpdate:
        with self.database.session() as session:
            found = self._current(session, device_id)
            running = session.get(DeviceRunningVersion, device_id)
            entry = None
            if found is not None:
                record, rollout = found
                entry = DeviceRolloutEntry(
                    **_entry(record).model_dump(),
                    rollout_id=rollout.id,
                    rollout_state=rollout.state,
                    bundle_id=rollout.bundle_id,
                    version=rollout.version,
                )
            return DeviceUpdate(
                rollout=entry,
                running_version=running.version if running else None,
                running_reported_at=_utc(running.reported_at) if running else None,
            )

    def served_bundle(self, device_id: str) -> ServedBundle | None:
        """The bundle the device may download now: its current rollout's, while it holds
        that rollout's offer."""
        with self.database.session() as session:
            found = self._current(session, device_id)
            if found is None or not has_offer(found[1].state, found[0].state):
                return None
            return ServedBundle(found[1].owner_id, found[1].bundle_id)

    def offers(self) -> list[tuple[str, Offer]]:
        """Every offer devices hold now (to publish again when the service starts)."""
        with self.database.session() as session:
            rows = session.execute(
                select(OtaRolloutDevice, OtaRollout)
                .join(OtaRollout, OtaRollout.id == OtaRolloutDevice.rollout_id)
                .where(OtaRolloutDevice.state.in_(HOLDING))
                .order_by(OtaRollout.created_at)
            ).all()
            offers: dict[str, Offer] = {}
            held: dict[str, Offer] = {}  # newest rollout last: it wins for its device
            for entry, rollout in rows:
                if has_offer(rollout.state, entry.state):
                    if rollout.id not in offers:
                        offers[rollout.id] = _offer(session, rollout)
                    held[entry.device_id] = offers[rollout.id]
            return list(held.items())

    # ---- what changes a rollout ----------------------------------------------------

    def report(
        self, device_id: str, report: OtaReport, at: datetime
    ) -> tuple[str | None, Publishes]:
        """Apply a device's report: (why it was ignored or None, what to publish)."""
        done = Publishes()
        with self.database.session() as session:
            if report.state in ("running", "confirmed"):
                self._running(session, device_id, report.version, at)
            if report.state == "running":
                return None, done
            found = self._current(session, device_id)
            if found is None or found[1].id != report.rollout:
                current = found[1].id if found else None
                return f"not the device's current rollout ({current})", done
            rollout = _locked(session, report.rollout)
            entry = session.get(OtaRolloutDevice, (rollout.id, device_id), populate_existing=True)
            if entry.state == "queued":
                return "the device was never offered this rollout", done
            if entry.state in TERMINAL:
                return f"its entry is final already ({entry.state})", done
            if _utc(entry.updated_at) > at:
                return "older than the entry's last change", done
            entry.state, entry.updated_at = report.state, at
            entry.progress = report.progress if report.state == "downloading" else None
            entry.error = report.error if report.state in ("rolled_back", "failed") else None
            if report.state == "staged":
                entry.progress = 100
            if entry.state in TERMINAL:
                done.clear.append(device_id)  # its offer is spent, taken or not
            session.flush()
            _advance(session, rollout, at, done)
            return None, done

    @staticmethod
    def _running(session: Session, device_id: str, version: str, at: datetime) -> None:
        record = session.get(DeviceRunningVersion, device_id)
        if record is None:
            session.add(DeviceRunningVersion(device_id=device_id, version=version, reported_at=at))
        elif _utc(record.reported_at) <= at:
            record.version, record.reported_at = version, at

    def cancel(self, owner_id: int, rollout_id: str, now: datetime) -> tuple[Rollout, Publishes]:
        """Cancel a running or halted rollout (its untaken offers withdrawn); a finished
        one is answered as it is. KeyError when it is not the owner's."""
        done = Publishes()
        with self.database.session() as session:
            record = _locked(session, rollout_id)
            if record is None or record.owner_id != owner_id:
                raise KeyError(rollout_id)
            entries = _entries(session, rollout_id)
            if record.state in (*RUNNING, "halted"):
                views = [EntryView(e.device_id, e.canary, e.state) for e in entries]
                done.clear += untaken(views)
                record.state, record.updated_at = "cancelled", now
            return _rollout(record, entries), done

    def forget(self, device_id: str, now: datetime) -> Publishes:
        """The device is deleted: its entries and version go; rollouts it held back move on."""
        done = Publishes()
        with self.database.session() as session:
            rollout_ids = session.scalars(
                select(OtaRolloutDevice.rollout_id).where(OtaRolloutDevice.device_id == device_id)
            ).all()
            session.execute(delete(OtaRolloutDevice).where(OtaRolloutDevice.device_id == device_id))
            session.execute(
                delete(DeviceRunningVersion).where(DeviceRunningVersion.device_id == device_id)
            )
            for rollout_id in rollout_ids:
                rollout = _locked(session, rollout_id)
                if rollout is not None and _entries(session, rollout_id):
                    _advance(session, rollout, now, done)
        return done
