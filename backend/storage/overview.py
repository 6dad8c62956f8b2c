"""The fleet at a glance, in one call: for each device its state, the last hour's
completeness, its newest values and a sparkline of its main field. The console's devices
list polls it. The store is read in bulk (statuses, last seen, the hour's marks and the
newest values of all the devices at once; the sparklines one query per distinct field),
where the per-device routes cost eight reads per device."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from fieldline_backend.infra.timeseries import QueryError, TimeSeriesReader, Value
from fieldline_backend.storage.status import HOUR_MS, completeness, presence

LATEST_SINCE_MS = 30 * 24 * HOUR_MS  # as GET .../latest's default start


def main_field(preferred: str | None, latest: Mapping[str, tuple[int, Value]]) -> str | None:
    """The field a sparkline shows: the device's preferred one if it has values, else the
    first numeric field by name."""
    if preferred and preferred in latest:
        return preferred
    numeric = [n for n, (_ts, v) in sorted(latest.items()) if not isinstance(v, bool)]
    return numeric[0] if numeric else None


def capped_latest(found: Mapping[str, tuple[int, Value]], cap: int) -> tuple[dict, bool]:
    """({name: [ts, value]} of the first `cap` fields by name, whether there were more):
    the answer of GET .../latest, and of each fleet row. Read with limit=cap + 1."""
    return {k: list(v) for k, v in sorted(found.items())[:cap]}, len(found) > cap


def _read_at_once(store: TimeSeriesReader, *reads):
    """Each (function, *args), in parallel threads where the store gains, else in turn."""
    if not store.parallel_reads:
        return [read(*args) for read, *args in reads]
    with ThreadPoolExecutor(len(reads), "overview") as pool:
        futures = [pool.submit(read, *args) for read, *args in reads]
        return [future.result() for future in futures]


def fleet_overview(
    store: TimeSeriesReader,
    preferred: Mapping[str, str | None],
    now_ms: int,
    every_ms: int,
    max_fields: int,
) -> list[dict]:
    """One row per device of `preferred` (device id -> preferred sparkline field)."""
    ids = list(preferred)
    # Four independent reads, at once where that helps: on InfluxDB each is a round trip of
    # 50-130 ms for 300 devices, mostly waiting on the server.
    statuses, seen, marks, latest = _read_at_once(
        store,
        (store.statuses, ids),
        (store.last_seen, ids),
        (store.marks_by_device, ids, now_ms - HOUR_MS, now_ms + 60_000),
        (store.latest_by_device, ids, now_ms - LATEST_SINCE_MS, max_fields + 1),
    )
    rows = []
    for device_id in ids:
        hour = completeness(marks[device_id])
        fields, truncated = capped_latest(latest[device_id], max_fields)
        online, last_seen = presence(statuses.get(device_id), seen.get(device_id), now_ms)
        rows.append(
            {
                "device_id": device_id,
                "status": "online" if online else "offline",
                "last_seen": last_seen,
                "readings_last_hour": hour["received"],
                "completeness_last_hour": hour,
                "latest": fields,
                "latest_truncated": truncated,
                "main_field": main_field(preferred[device_id], latest[device_id]),
                "spark": [],
            }
        )
    _add_sparklines(store, rows, now_ms, every_ms)
    return rows


def _add_sparklines(store: TimeSeriesReader, rows: list[dict], now_ms: int, every: int) -> None:
    by_field: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["main_field"]:
            by_field[row["main_field"]].append(row)
    for name, group in by_field.items():
        ids = [row["device_id"] for row in group]
        try:
            series = store.query(ids, [name], now_ms - HOUR_MS, now_ms, every, "mean")
        except QueryError:  # booleans in the hour under a numeric newest value: no line
            continue
        for row in group:
            row["spark"] = [list(p) for p in series.get(row["device_id"], {}).get(name, [])]
