"""The time-series port: InfluxDB (1.x HTTP API) or the embedded SQLite store.

Schema (design brief): measurement `telemetry`, tags `device_id`, `owner` and the
device's metadata tags, one field per value, ms timestamps. A point written twice with
the same series key and timestamp lands once.

The storage service writes and answers the query API; the monitor evaluates rules.
Both use only this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fieldline_backend.infra.timeseries.paging import Page

Value = float | int | bool
# {device_id: {field: [(ts_ms, value), ...]}}: what a query answers.
Series = dict[str, dict[str, list[tuple[int, Value]]]]

MEASUREMENT = "telemetry"


# Where each adapter stores a reading's marks: fields of the same row under these names.
# They cannot collide with a value name: the contract limits those to
# [A-Za-z_][A-Za-z0-9_]{0,63}. Readers ask for RECEIVED_FIELD by name (deadman preview).
SEQ_FIELD = "@seq"
BOOT_FIELD = "@boot"
DROPPED_FIELD = "@dropped"
RECEIVED_FIELD = "@received"


@dataclass(frozen=True)
class Marks:
    """The pipeline's bookkeeping of one reading, carried beside its values: when it
    arrived (the ingestor's stamp) and the device's boot, seq and dropped counters."""

    received: int | None = None
    seq: int | None = None
    boot: int | None = None
    dropped: int | None = None

    def stored(self) -> dict[str, int]:
        """The marks under their stored names (the adapters' one way of writing them)."""
        named = {
            RECEIVED_FIELD: self.received,
            SEQ_FIELD: self.seq,
            BOOT_FIELD: self.boot,
            DROPPED_FIELD: self.dropped,
        }
        return {name: value for name, value in named.items() if value is not None}


@dataclass(frozen=True)
class Point:
    device_id: str
    ts_ms: int
    fields: dict[str, Value]  # the reading's values, as the payload contract checked them
    tags: dict[str, str] = field(default_factory=dict)  # owner + metadata tags
    marks: Marks = field(default_factory=Marks)  # bookkeeping, never among the values
    # Microseconds inside ts_ms, for readings without ts only (storage.service.tiebreak):
    # two storage workers may place two such readings of one device in the same ms at
    # once, neither seeing the other's write; apart inside the ms, neither replaces the
    # other. Reads still answer in ms. The SQLite store has one writer and ignores it.
    tiebreak_us: int = 0


class TimeSeriesUnavailable(Exception):
    """The store cannot be reached or refused a write; callers hold and retry."""


class TimeSeriesRejected(Exception):
    """The store refused these points for good (e.g. a field's type conflicts with the
    type stored before); retrying will not help. Storage dead-letters the reading."""


class QueryError(ValueError):
    """A query the store cannot answer as asked (e.g. mean of a boolean field)."""


STATUS_MEASUREMENT = "device_status"
DROPS_MEASUREMENT = "device_drops"
REJECTS_MEASUREMENT = "device_rejects"  # a device's messages storage dead-lettered


@dataclass(frozen=True)
class ReadingMark:
    """Bookkeeping of one stored reading: for completeness and redelivery checks."""

    ts_ms: int
    boot: int | None
    seq: int | None
    dropped: int | None


@dataclass(frozen=True)
class DropReport:
    """A device's count of readings dropped from its buffer since `boot` began."""

    ts_ms: int
    boot: int
    dropped: int


@dataclass(frozen=True)
class DeviceStatus:
    online: bool
    ts_ms: int


class TimeSeriesWriter(Protocol):
    """What the storage worker writes. Every write is durable when it returns; it raises
    TimeSeriesUnavailable (hold and retry) or TimeSeriesRejected (never retry)."""

    def ensure_schema(self) -> None:
        """Create the database/table and retention policy if missing (idempotent)."""

    def write(self, points: Sequence[Point]) -> None:
        """Write a batch of readings (their values and their marks)."""

    def write_status(self, device_id: str, online: bool, ts_ms: int) -> None:
        """A device's online/offline message; an older one never replaces a newer."""

    def write_drops(self, device_id: str, boot: int, dropped: int, ts_ms: int) -> None:
        """A device's report of readings dropped from its buffer since `boot` began."""

    def write_rejected(self, device_id: str, ts_ms: int) -> None:
        """One of the device's messages went to the dead letters at ts_ms."""

    def close(self) -> None: ...


class TimeSeriesReader(Protocol):
    """What the query API, the device status and the monitor read."""

    # Whether independent reads gain from running at once: a server does (InfluxDB), an
    # in-process file behind one lock does not (SQLite: threads only add GIL hand-offs).
    parallel_reads: bool

    def query(
        self,
        device_ids: Sequence[str],
        fields: Sequence[str],
        start_ms: int,
        stop_ms: int,
        every_ms: int | None = None,
        agg: str | None = None,
    ) -> Series:
        """{device_id: {field: [(ts_ms, value), ...]}} in time order, for the devices
        given, in [start_ms, stop_ms). With agg (mean, min, max, last, count) and
        every_ms: one value per window, stamped with the window start. Bulk on purpose:
        the monitor asks once per rule, for all the rule's devices. RECEIVED_FIELD may be
        asked as a field: the arrival stamps of the readings."""

    def page(
        self,
        device_ids: Sequence[str],
        fields: Sequence[str],
        start_ms: int,
        stop_ms: int,
        limit: int,
        every_ms: int | None = None,
        agg: str | None = None,
    ) -> Page:
        """What query answers, at most `limit` values of it (paging.cut): the first
        values by (ts, device, field), never holding more than limit + 1 in memory;
        `next_start` says where the rest begins. What the query API serves."""

    def last_seen(self, device_ids: Sequence[str]) -> dict[str, int]:
        """{device_id: ts_ms of its newest point}; devices with no point are absent."""

    def latest(
        self, device_id: str, start_ms: int, limit: int | None = None
    ) -> dict[str, tuple[int, Value]]:
        """{field: (ts_ms, value)}: the newest value of each of the device's fields since
        start_ms, marks left out (how a reader learns the fields).
        With limit: the first `limit` fields by name."""

    def latest_by_device(
        self, device_ids: Sequence[str], start_ms: int, limit: int | None = None
    ) -> dict[str, dict[str, tuple[int, Value]]]:
        """latest() of each device, in bulk (the fleet overview): every device given is a
        key, {} when it has no value since start_ms."""

    def marks(self, device_id: str, start_ms: int, stop_ms: int) -> list[ReadingMark]:
        """The marks of the device's readings in [start_ms, stop_ms), one per reading."""

    def marks_by_device(
        self, device_ids: Sequence[str], start_ms: int, stop_ms: int
    ) -> dict[str, list[ReadingMark]]:
        """marks() of each device, in bulk: every device given is a key, in time order."""

    def statuses(self, device_ids: Sequence[str]) -> dict[str, DeviceStatus]:
        """{device_id: its newest online/offline message}; devices without one absent."""

    def drop_reports(self, device_id: str, start_ms: int, stop_ms: int) -> list[DropReport]:
        """The device's drop reports in [start_ms, stop_ms), oldest first."""

    def rejected(self, device_id: str, start_ms: int, stop_ms: int) -> int:
        """How many of the device's messages storage dead-lettered in [start, stop)."""

    def close(self) -> None: ...


class TimeSeriesStore(TimeSeriesWriter, TimeSeriesReader, Protocol):
    """Both sides: what each adapter (influx.py, sqlite.py) implements, and what the
    contract suite (tests/pipeline/test_timeseries_contract.py) runs on each."""


def open_timeseries(settings) -> TimeSeriesStore:
    """The adapter the settings pick: InfluxDB with FIELDLINE_INFLUX_URL, else SQLite."""
    if settings.influx_url:
        from fieldline_backend.infra.timeseries.influx import InfluxStore

        return InfluxStore(
            settings.influx_url,
            settings.influx_database,
            token=settings.influx_token,
            retention=settings.influx_retention,
        )
    from fieldline_backend.infra.timeseries.sqlite import SQLiteStore

    return SQLiteStore(settings.data_dir / "timeseries.db")
