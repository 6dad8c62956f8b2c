"""From queue messages to points: validate, enrich, stamp, deduplicate.

No I/O of its own beyond the ports it is given (the device directory and the store's
redelivery lookup), so each rule is testable alone.

Exactly once: a reading with `ts` is keyed by (device, ts) in the store, so writing it
again changes nothing. A reading without `ts` gets the arrival time the ingestor
stamped once into the `received_at` header; an MQTT redelivery (ingestor crash between
the queue's confirm and the PUBACK) arrives with a later stamp, so such a reading is
also keyed by (device, boot, seq): before writing, the store is asked which of those
pairs it already holds within the redelivery window, and those are skipped. Two ingestor
replicas may stamp two readings of one device alike: a worker moves its reading to the
next free ms it sees, and, for two workers placing at once, each such reading also sits
at its own microsecond inside the ms (tiebreak), so neither write replaces the other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import BaseModel, ValidationError

from fieldline_backend.common.topics import (
    COMMAND_RESULT,
    CONFIG_REPORTED,
    DROP_REPORT,
    OTA_REPORTED,
    STATUS,
    TELEMETRY,
    parse_topic,
)
from fieldline_backend.devices.command_schemas import CommandReport
from fieldline_backend.devices.config_schemas import ConfigReport
from fieldline_backend.devices.ota_schemas import OtaReport
from fieldline_backend.infra.queue import QueueMessage
from fieldline_backend.infra.timeseries import DropReport, Marks, Point, TimeSeriesStore
from fieldline_backend.infra.timeseries.tags import RESERVED_TAG_KEYS, representable_tag
from fieldline_backend.storage.device_reports import DeviceReports
from fieldline_backend.storage.devices import DeviceDirectory, DeviceInfo
from fieldline_backend.storage.readings import (
    InvalidPayload,
    Reading,
    parse_drop_report,
    parse_payload,
)

# What a device reports for the devices service: kind -> (payload model, dead-letter label).
REPORTS: dict[str, tuple[type[BaseModel], str]] = {
    CONFIG_REPORTED: (ConfigReport, "config report"),
    COMMAND_RESULT: (CommandReport, "command result"),
    OTA_REPORTED: (OtaReport, "ota report"),
}


@dataclass
class StatusChange:
    device_id: str
    online: bool
    ts_ms: int


@dataclass
class Batch:
    """What one batch of messages turned into."""

    points_by_message: list[tuple[QueueMessage, list[Point]]] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    drop_reports: list[tuple[str, DropReport]] = field(default_factory=list)  # (device, report)
    # (kind, device, report, arrival ms): passed on to the devices service before the ack
    device_reports: list[tuple[str, str, BaseModel, int]] = field(default_factory=list)
    dead: list[tuple[QueueMessage, str]] = field(default_factory=list)
    # (device id, arrival ms) of each dead letter from a known device: its status shows
    # them, so a device sending to a mistyped topic is seen by its owner.
    rejected: list[tuple[str, int]] = field(default_factory=list)
    duplicates: int = 0

    def reject(self, message: QueueMessage, reason: str, info: DeviceInfo, arrival: int) -> None:
        """A dead letter from a known device: also shown in its status."""
        self.dead.append((message, reason))
        self.rejected.append((info.device_id, arrival))

    @property
    def points(self) -> list[Point]:
        return [p for _, points in self.points_by_message for p in points]


def device_tags(info: DeviceInfo) -> dict[str, str]:
    """owner, name and the metadata tags, as line protocol can carry them."""
    tags: dict[str, str] = {}
    for key, value in info.metadata.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        clean_key, clean_value = representable_tag(str(key)), representable_tag(text)
        if clean_key and clean_value and clean_key not in RESERVED_TAG_KEYS:
            tags[clean_key] = clean_value
    name = representable_tag(info.name)
    if name and "name" not in tags:
        tags["name"] = name
    tags["owner"] = representable_tag(info.owner_id)
    return tags


# How far past the newest arrival a colliding stamp may move (and the store is asked).
STAMP_HEADROOM_MS = 1000


def received_at(message: QueueMessage) -> int:
    try:
        return int(message.headers["received_at"])
    except (KeyError, TypeError, ValueError):
        return int(time.time() * 1000)


def tiebreak(reading: Reading) -> int:
    """Microseconds (1-999) inside its ms for a reading without ts, from its (boot, seq):
    the same reading always lands on the same spot (a redelivery replaces itself), two
    readings of one boot less than 999 seqs apart never share one. 0 with a ts, whose
    (device, ts) is the reading's key."""
    if reading.ts_ms is not None or reading.seq is None:
        return 0
    return 1 + (reading.seq + 7919 * (reading.boot or 0)) % 999


def reading_points(
    info: DeviceInfo, readings: Sequence[Reading], arrival: int, tags: dict[str, str]
) -> list[Point]:
    """`tags`: device_tags(info), made once a batch by the caller."""
    points = []
    for index, reading in enumerate(readings):
        # Readings of one batch without ts keep their order and stay apart.
        ts = reading.ts_ms if reading.ts_ms is not None else arrival - (len(readings) - 1 - index)
        marks = Marks(received=arrival, seq=reading.seq, boot=reading.boot, dropped=reading.dropped)
        point = Point(info.device_id, ts, reading.values, tags, marks, tiebreak(reading))
        points.append(point)
    return points


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "payload"
    return f"{where}: {first.get('msg', 'invalid')}"[:200]


class StorageService:
    def __init__(
        self,
        directory: DeviceDirectory,
        store: TimeSeriesStore,
        redelivery_window_ms: int,
        reports: DeviceReports | None = None,
    ):
        self.directory = directory
        self.store = store
        self.window_ms = redelivery_window_ms
        self.reports = reports  # None: config reports are dead-lettered (tests of storage)

    def _unknown_topic(
        self, message: QueueMessage, topic: str, info: DeviceInfo | None, batch: Batch
    ) -> None:
        # "unknown topic" is the metric label; the topic itself follows it.
        reason = f"unknown topic: {topic[:200]!r}"
        if info is None:
            batch.dead.append((message, reason))
        else:
            batch.reject(message, reason, info, received_at(message))

    def prepare(self, messages: Sequence[QueueMessage]) -> Batch:
        """Raises DirectoryUnavailable / TimeSeriesUnavailable: the caller retries."""
        batch = Batch()
        unstamped: list[tuple[int, int]] = []  # (message index, point index)
        tags_of: dict[str, dict[str, str]] = {}  # per device, once a batch
        for message in messages:
            topic = str(message.headers.get("topic", ""))
            parsed = parse_topic(topic)
            # The ingestor parsed the topic and put its device in the client_id header
            # (design.md); storage takes the device from there and only the kind here.
            client_id = str(message.headers.get("client_id", ""))
            info = self.directory.lookup(client_id) if parsed and client_id else None
            if parsed is None or not parsed.stored:
                self._unknown_topic(message, topic, info, batch)
                continue
            kind = parsed.kind
            if info is None:
                batch.dead.append((message, f"unknown device: no MQTT account {client_id!r}"))
                continue
            arrival = received_at(message)
            if kind != TELEMETRY:
                self._device_report(kind, message, info, arrival, batch)
                continue
            try:
                readings = parse_payload(message.body)
            except InvalidPayload as error:
                batch.reject(message, f"invalid payload: {error}", info, arrival)
                continue
            tags = tags_of.get(info.device_id)
            if tags is None:
                tags = tags_of[info.device_id] = device_tags(info)
            points = reading_points(info, readings, arrival, tags)
            batch.points_by_message.append((message, points))
            unstamped += [
                (len(batch.points_by_message) - 1, index)
                for index, reading in enumerate(readings)
                if reading.ts_ms is None and reading.seq is not None
            ]
        if unstamped:
            self._drop_redeliveries(batch, unstamped)
        return batch

    def _device_report(
        self, kind: str, message: QueueMessage, info: DeviceInfo, arrival: int, batch: Batch
    ) -> None:
        """A device's status, drop report or config report (not telemetry)."""
        if kind == DROP_REPORT:
            try:
                boot, dropped = parse_drop_report(message.body)
            except InvalidPayload as error:
                batch.reject(message, f"invalid payload: {error}", info, arrival)
                return
            batch.drop_reports.append((info.device_id, DropReport(arrival, boot, dropped)))
        elif kind in REPORTS:
            if self.reports is None:
                self._unknown_topic(message, str(message.headers.get("topic")), info, batch)
                return
            model, what = REPORTS[kind]
            try:
                report = model.model_validate_json(message.body)
            except ValidationError as error:
                reason = f"invalid payload: {what}: {_first_error(error)}"
                batch.reject(message, reason, info, arrival)
                return
            batch.device_reports.append((kind, info.device_id, report, arrival))
        elif kind == STATUS:
            state = message.body.strip().lower()
            if state not in (b"online", b"offline"):
                reason = "status payload must be 'online' or 'offline'"
                batch.reject(message, reason, info, arrival)
                return
            batch.statuses.append(StatusChange(info.device_id, state == b"online", arrival))

    def _drop_redeliveries(self, batch: Batch, unstamped: list[tuple[int, int]]) -> None:
        """Readings without ts whose (boot, seq) the store (or this batch) already has."""
        arrivals: dict[str, list[int]] = {}
        for mi, pi in unstamped:
            point = batch.points_by_message[mi][1][pi]
            arrivals.setdefault(point.device_id, []).append(point.marks.received)
        known: dict[str, set[tuple[int | None, int]]] = {}
        # Which reading holds each millisecond: arrival stamps are unique per ingestor
        # process only, so two replicas can stamp two readings of one device alike, and
        # the second write would replace the first (same series key).
        holder: dict[str, dict[int, tuple]] = {}
        for device, times in arrivals.items():
            marks = self.store.marks(
                device, min(times) - self.window_ms, max(times) + STAMP_HEADROOM_MS
            )
            known[device] = {(m.boot, m.seq) for m in marks if m.seq is not None}
            holder[device] = {m.ts_ms: (m.boot, m.seq) for m in marks}
        drop: set[tuple[int, int]] = set()
        for mi, pi in unstamped:
            point = batch.points_by_message[mi][1][pi]
            key = (point.marks.boot, point.marks.seq)
            if key in known[point.device_id]:
                drop.add((mi, pi))
                continue
            known[point.device_id].add(key)
            taken = holder[point.device_id]
            ts = point.ts_ms
            while taken.get(ts, key) != key:
                ts += 1  # the next free millisecond: both readings are kept
            taken[ts] = key
            if ts != point.ts_ms:
                batch.points_by_message[mi][1][pi] = replace(point, ts_ms=ts)
        batch.duplicates += len(drop)
        for mi, (message, points) in enumerate(batch.points_by_message):
            if any((mi, pi) in drop for pi in range(len(points))):
                kept = [p for pi, p in enumerate(points) if (mi, pi) not in drop]
                batch.points_by_message[mi] = (message, kept)
