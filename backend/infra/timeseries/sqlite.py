"""The embedded time-series store: one SQLite file in the data dir.

Same contract as InfluxDB: a value written twice for the same device, timestamp and
field lands once (the primary key), windows of `every` are aligned to the epoch and
stamped with their start, mean/min/max of a boolean field are refused. Tags are kept
per reading (the newest write wins, where InfluxDB would start a second series).
"""

from __future__ import annotations

import heapq
import json
import math
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fieldline_backend.infra.timeseries import (
    BOOT_FIELD,
    DROPPED_FIELD,
    RECEIVED_FIELD,
    SEQ_FIELD,
    DeviceStatus,
    DropReport,
    Point,
    QueryError,
    ReadingMark,
    Series,
    TimeSeriesUnavailable,
    Value,
)
from fieldline_backend.infra.timeseries.paging import Page, cut

AGGREGATES = ("mean", "min", "max", "last", "count")

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, tags TEXT NOT NULL,
    PRIMARY KEY (device_id, ts_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reading_values (
    device_id TEXT NOT NULL, field TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    value NOT NULL, is_bool INTEGER NOT NULL,
    PRIMARY KEY (device_id, field, ts_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_drops (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, boot INTEGER NOT NULL,
    dropped INTEGER NOT NULL, PRIMARY KEY (device_id, ts_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_rejects (
    device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, PRIMARY KEY (device_id, ts_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_status (
    device_id TEXT PRIMARY KEY, online INTEGER NOT NULL, ts_ms INTEGER NOT NULL);
"""


class SQLiteStore:
    parallel_reads = False  # one connection behind one lock

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the storage worker thread and the API's threads.
        # A short busy timeout: a locked file is an outage the worker retries, not a hang.
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=5)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")

    def ensure_schema(self) -> None:
        with self.lock:
            self.db.executescript(SCHEMA)

    def write(self, points: Sequence[Point]) -> None:
        texts: dict[int, str] = {}  # the points of one device in a batch share their tags
        readings = []
        for p in points:
            text = texts.get(id(p.tags))
            if text is None:
                text = texts[id(p.tags)] = json.dumps(p.tags, sort_keys=True)
            readings.append((p.device_id, p.ts_ms, text))
        values = [
            (p.device_id, name, p.ts_ms, value, int(isinstance(value, bool)))
            for p in points
            for name, value in (*p.fields.items(), *p.marks.stored().items())
        ]
        try:
            with self.lock, self.db:
                self.db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?)", readings)
                self.db.executemany(
                    "INSERT OR REPLACE INTO reading_values VALUES (?, ?, ?, ?, ?)", values
                )
        except sqlite3.OperationalError as error:  # disk full, locked for too long
            raise TimeSeriesUnavailable(f"SQLite time series {self.path}: {error}") from error

    def write_status(self, device_id: str, online: bool, ts_ms: int) -> None:
        try:
            self._write_status(device_id, online, ts_ms)
        except sqlite3.OperationalError as error:
            raise TimeSeriesUnavailable(f"SQLite time series {self.path}: {error}") from error

    def write_drops(self, device_id: str, boot: int, dropped: int, ts_ms: int) -> None:
        try:
            with self.lock, self.db:
                self.db.execute(
                    "INSERT OR REPLACE INTO device_drops VALUES (?, ?, ?, ?)",
                    (device_id, ts_ms, boot, dropped),
                )
        except sqlite3.OperationalError as error:
            raise TimeSeriesUnavailable(f"SQLite time series {self.path}: {error}") from error

    def drop_reports(self, device_id: str, start_ms: int, stop_ms: int) -> list[DropReport]:
        with self.lock:
            rows = self.db.execute(
                "SELECT ts_ms, boot, dropped FROM device_drops WHERE device_id = ? "
                "AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
                (device_id, int(start_ms), int(stop_ms)),
            ).fetchall()
        return [DropReport(ts, boot, dropped) for ts, boot, dropped in rows]

    def write_rejected(self, device_id: str, ts_ms: int) -> None:
        try:
            with self.lock, self.db:
                self.db.execute(
                    "INSERT OR IGNORE INTO device_rejects VALUES (?, ?)", (device_id, int(ts_ms))
                )
        except sqlite3.OperationalError as error:
            raise TimeSeriesUnavailable(f"SQLite time series {self.path}: {error}") from error

    def rejected(self, device_id: str, start_ms: int, stop_ms: int) -> int:
        """How many of the device's messages storage dead-lettered in [start, stop)."""
        with self.lock:
            (count,) = self.db.execute(
                "SELECT count(*) FROM device_rejects WHERE device_id = ? "
                "AND ts_ms >= ? AND ts_ms < ?",
                (device_id, int(start_ms), int(stop_ms)),
            ).fetchone()
        return int(count)

    def _write_status(self, device_id: str, online: bool, ts_ms: int) -> None:
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO device_status VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE "
                "SET online = excluded.online, ts_ms = excluded.ts_ms "
                "WHERE excluded.ts_ms >= device_status.ts_ms",
                (device_id, int(online), ts_ms),
            )

    def query(self, device_ids, fields, start_ms, stop_ms, every_ms=None, agg=None) -> Series:
        # Typed and documented once, in the port (TimeSeriesReader.query).
        result: Series = {d: {} for d in device_ids}
        if not device_ids or not fields:
            return result
        if agg is not None and agg not in AGGREGATES:
            raise QueryError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        where, args = _where(device_ids, fields, start_ms, stop_ms)
        with self.lock:
            if agg is None:
                rows = self.db.execute(
                    f"SELECT device_id, field, ts_ms, value, is_bool FROM reading_values "
                    f"WHERE {where} ORDER BY ts_ms",
                    args,
                ).fetchall()
                for device, name, ts, value, is_bool in rows:
                    result[device].setdefault(name, []).append((ts, _typed(value, is_bool)))
                return result
            self._refuse_booleans(agg, where, args)
            every = int(every_ms or max(stop_ms - start_ms, 1))
            rows = self.db.execute(_aggregate_sql(agg, where), [every, every, *args]).fetchall()
        for device, name, window, value, is_bool in rows:
            window, device, name, value = _window_row(agg, device, name, window, value, is_bool)
            result[device].setdefault(name, []).append((window, value))
        return result

    def page(self, device_ids, fields, start_ms, stop_ms, limit, every_ms=None, agg=None) -> Page:
        # Typed and documented once, in the port (TimeSeriesReader.page).
        devices, names = sorted(set(device_ids)), sorted(set(fields))
        if not devices or not names:
            return Page({d: {} for d in device_ids}, None)
        if agg is not None:
            return self._aggregate_page(devices, names, start_ms, stop_ms, limit, every_ms, agg)
        with self.lock:
            # One cursor per (device, field) walks the primary key in ts order, and the
            # merge steps them lazily: a page reads limit + 1 rows, not the whole range
            # (ORDER BY ts over the table would sort every row in it first).
            cursors = [
                self._series_rows(device, name, start_ms, stop_ms)
                for device in devices
                for name in names
            ]
            return cut(heapq.merge(*cursors), device_ids, limit)

    def _series_rows(self, device: str, name: str, start_ms: int, stop_ms: int):
        rows = self.db.execute(
            "SELECT ts_ms, value, is_bool FROM reading_values WHERE device_id = ? "
            "AND field = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
            (device, name, int(start_ms), int(stop_ms)),
        )
        return ((ts, device, name, _typed(value, is_bool)) for ts, value, is_bool in rows)

    def _aggregate_page(self, devices, names, start_ms, stop_ms, limit, every_ms, agg) -> Page:
        if agg not in AGGREGATES:
            raise QueryError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        where, args = _where(devices, names, start_ms, stop_ms)
        every = int(every_ms or max(stop_ms - start_ms, 1))
        with self.lock:
            self._refuse_booleans(agg, where, args)
            rows = self.db.execute(
                _aggregate_sql(agg, where) + ", device_id, field", [every, every, *args]
            )
            return cut((_window_row(agg, *row) for row in rows), devices, limit)

    def _refuse_booleans(self, agg: str, where: str, args: list[Any]) -> None:
        if agg in ("mean", "min", "max"):
            booleans = self.db.execute(
                f"SELECT DISTINCT field FROM reading_values WHERE {where} AND is_bool = 1", args
            ).fetchall()
            if booleans:
                raise QueryError(
                    f"field {booleans[0][0]!r}: {agg} is not defined for boolean values"
                )

    def last_seen(self, device_ids: Sequence[str]) -> dict[str, int]:
        if not device_ids:
            return {}
        marks = ",".join("?" * len(device_ids))
        with self.lock:
            rows = self.db.execute(
                f"SELECT device_id, MAX(ts_ms) FROM readings WHERE device_id IN ({marks}) "
                "GROUP BY device_id",
                list(device_ids),
            ).fetchall()
        return {device: ts for device, ts in rows}

    def statuses(self, device_ids: Sequence[str]) -> dict[str, DeviceStatus]:
        if not device_ids:
            return {}
        marks = ",".join("?" * len(device_ids))
        with self.lock:
            rows = self.db.execute(
                f"SELECT device_id, online, ts_ms FROM device_status WHERE device_id IN ({marks})",
                list(device_ids),
            ).fetchall()
        return {device: DeviceStatus(bool(online), ts) for device, online, ts in rows}

    def latest(
        self, device_id: str, start_ms: int, limit: int | None = None
    ) -> dict[str, tuple[int, Value]]:
        # Typed and documented once, in the port (TimeSeriesReader.latest).
        return self.latest_by_device([device_id], start_ms, limit)[device_id]

    def latest_by_device(self, device_ids, start_ms, limit=None):
        found: dict[str, dict[str, tuple[int, Value]]] = {d: {} for d in device_ids}
        if not device_ids:
            return found
        marks = ",".join("?" * len(device_ids))
        with self.lock:
            # SQLite takes the bare columns from the row holding the MAX.
            rows = self.db.execute(
                "SELECT device_id, field, MAX(ts_ms), value, is_bool FROM reading_values "
                f"WHERE device_id IN ({marks}) AND ts_ms >= ? AND substr(field, 1, 1) != '@' "
                "GROUP BY device_id, field ORDER BY device_id, field",
                (*device_ids, int(start_ms)),
            ).fetchall()
        for device, name, ts, value, is_bool in rows:
            fields = found[device]
            if limit is None or len(fields) < limit:
                fields[name] = (ts, _typed(value, is_bool))
        return found

    def marks(self, device_id: str, start_ms: int, stop_ms: int) -> list[ReadingMark]:
        return self.marks_by_device([device_id], start_ms, stop_ms)[device_id]

    def marks_by_device(self, device_ids, start_ms, stop_ms):
        names = (RECEIVED_FIELD, BOOT_FIELD, SEQ_FIELD, DROPPED_FIELD)
        by_ts: dict[str, dict[int, dict[str, int]]] = {d: {} for d in device_ids}
        if not device_ids:
            return {}
        marks = ",".join("?" * len(device_ids))
        with self.lock:
            rows = self.db.execute(
                f"SELECT device_id, ts_ms, field, value FROM reading_values "
                f"WHERE device_id IN ({marks}) AND field IN (?, ?, ?, ?) "
                "AND ts_ms >= ? AND ts_ms < ? ORDER BY device_id, ts_ms",
                (*device_ids, *names, int(start_ms), int(stop_ms)),
            ).fetchall()
        for device, ts, name, value in rows:
            by_ts[device].setdefault(ts, {})[name] = int(value)
        return {
            device: [
                ReadingMark(ts, f.get(BOOT_FIELD), f.get(SEQ_FIELD), f.get(DROPPED_FIELD))
                for ts, f in stamps.items()
            ]
            for device, stamps in by_ts.items()
        }

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _aggregate_sql(agg: str, where: str) -> str:
    windowed = (
        "SELECT device_id, field, (ts_ms / ?) * ? AS window, ts_ms, value, is_bool "
        f"FROM reading_values WHERE {where}"
    )
    if agg == "last":
        return (
            "SELECT device_id, field, window, value, is_bool FROM ("
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY device_id, field, window "
            f"ORDER BY ts_ms DESC) AS n FROM ({windowed})) WHERE n = 1 ORDER BY window"
        )
    function = {"mean": "AVG", "min": "MIN", "max": "MAX", "count": "COUNT"}[agg]
    return (
        f"SELECT device_id, field, window, {function}(value), MAX(is_bool) FROM ({windowed}) "
        "GROUP BY device_id, field, window ORDER BY window"
    )


def _where(device_ids, fields, start_ms: int, stop_ms: int) -> tuple[str, list[Any]]:
    marks = ",".join("?" * len(device_ids))
    names = ",".join("?" * len(fields))
    where = f"device_id IN ({marks}) AND field IN ({names}) AND ts_ms >= ? AND ts_ms < ?"
    return where, [*device_ids, *fields, int(start_ms), int(stop_ms)]


def _window_row(agg: str, device: str, name: str, window: int, value, is_bool: int):
    """One aggregate as a page row (window, device, field, value), typed as stored."""
    value = int(value) if agg == "count" else _typed(value, is_bool)
    if isinstance(value, float) and not math.isfinite(value):
        raise QueryError(f"field {name!r}: the {agg} overflows a 64-bit float")
    return window, device, name, value


def _typed(value, is_bool: int) -> Value:
    return bool(value) if is_bool else float(value)
