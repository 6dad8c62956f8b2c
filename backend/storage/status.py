"""A device's state for people: online or not, last seen, and how complete its data is.

Completeness counts readings missing by `seq`: within each `boot`, the device numbers
its readings 0, 1, 2, ...; the gaps between the lowest and highest seq seen in a window
are readings that never arrived. `dropped` adds what the device itself reported
throwing away from its offline buffer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from fieldline_backend.infra.timeseries import (
    DeviceStatus,
    DropReport,
    ReadingMark,
    TimeSeriesReader,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ONLINE_GRACE_MS = 120_000  # no status message yet: online if seen this recently


def completeness(marks: Iterable[ReadingMark]) -> dict:
    seqs: dict[int | None, set[int]] = defaultdict(set)
    received = 0
    dropped = 0
    for mark in marks:
        received += 1
        dropped += mark.dropped or 0
        if mark.seq is not None:
            seqs[mark.boot].add(mark.seq)
    missing = sum(max(s) - min(s) + 1 - len(s) for s in seqs.values() if s)
    expected = received + missing
    return {
        "received": received,
        "missing": missing,
        "device_dropped": dropped,
        "ratio": round(received / expected, 4) if expected else None,
        "boots": len(seqs),
    }


def reported_drops(reports: Iterable[DropReport], since_ms: int) -> int:
    """Readings the device reported dropping after since_ms. Reports are counts since
    their boot began: per boot, the newest count minus the last one before the window."""
    newest: dict[int, int] = {}
    before: dict[int, int] = {}
    for report in reports:
        target = newest if report.ts_ms >= since_ms else before
        target[report.boot] = max(target.get(report.boot, 0), report.dropped)
    return sum(max(count - before.get(boot, 0), 0) for boot, count in newest.items())


def presence(status: DeviceStatus | None, seen: int | None, now_ms: int) -> tuple[bool, int | None]:
    """(online, last seen): the device's own retained status when it sent one, else
    whether a reading arrived in the last ONLINE_GRACE_MS."""
    online = status.online if status is not None else bool(seen and now_ms - seen < ONLINE_GRACE_MS)
    stamps = [t for t in (seen, status.ts_ms if status else None) if t is not None]
    return online, max(stamps, default=None) or None


def device_status(store: TimeSeriesReader, device_id: str, now_ms: int) -> dict:
    status = store.statuses([device_id]).get(device_id)
    seen = store.last_seen([device_id]).get(device_id)
    day = store.marks(device_id, now_ms - DAY_MS, now_ms + 60_000)
    hour = [m for m in day if m.ts_ms >= now_ms - HOUR_MS]
    reports = store.drop_reports(device_id, now_ms - 2 * DAY_MS, now_ms + 60_000)
    hour_report = completeness(hour)
    day_report = completeness(day)
    hour_report["device_dropped"] += reported_drops(reports, now_ms - HOUR_MS)
    day_report["device_dropped"] += reported_drops(reports, now_ms - DAY_MS)
    # Messages it sent that went to telemetry.dead (a mistyped topic, an invalid payload).
    hour_report["rejected"] = store.rejected(device_id, now_ms - HOUR_MS, now_ms + 60_000)
    day_report["rejected"] = store.rejected(device_id, now_ms - DAY_MS, now_ms + 60_000)
    online, last_seen = presence(status, seen, now_ms)
    return {
        "device_id": device_id,
        "status": "online" if online else "offline",
        "last_seen": last_seen,
        "readings_last_hour": len(hour),
        "completeness": {"last_hour": hour_report, "last_day": day_report},
    }
