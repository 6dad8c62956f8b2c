"""One monitor cycle: every enabled rule evaluated against the time-series store, each
(rule, device) level that changed posted to the alerts service.

Bulk reads: rules that watch the same field share one query per 200 devices over the
union of their devices (queried apart: devices catching up after an outage), and all
deadman rules share one last-seen lookup per 200 devices; a few run at a time in
threads. So a cycle costs a handful of queries, not one per rule or per device.
Readings are processed once, in timestamp order, from a cursor per (rule, device);
a reading that arrives more than `late_after` after it was taken is backlog: it goes
into a digest (one notification per device and rule once the backlog has drained),
never into the live level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fieldline_backend.common import metrics
from fieldline_backend.infra.timeseries import TimeSeriesReader
from fieldline_backend.monitor.devices import OwnedDevices, WatchedDevice
from fieldline_backend.monitor.evaluation import SeriesState, deadman_level, digest_backlog
from fieldline_backend.monitor.notify import deadman_payload, late_payload, threshold_payload

log = logging.getLogger(__name__)

FUTURE_SLACK_MS = 60_000  # readings stamped a little ahead (device clocks) still count
MAX_BACKLOG_READINGS = 100_000
QUERY_DEVICES = 200  # devices per query: keeps the InfluxQL statement a few KiB


@dataclass
class Track:
    """What the monitor knows about one (rule, device)."""

    state: SeriesState = field(default_factory=SeriesState)
    cursor: int | None = None  # newest reading timestamp processed
    posted: str | None = None  # level the alerts service last accepted
    backlog: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class CycleReport:
    rules: int = 0
    devices: int = 0
    queries: int = 0
    posted: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class Monitor:
    def __init__(
        self,
        store: TimeSeriesReader,
        fetch_rules: Callable[[], Awaitable[list[dict]]],
        fetch_devices: Callable[[str], Awaitable[list[WatchedDevice]]],
        post: Callable[[list[dict]], Awaitable[None]],
        interval_s: float = 10.0,
        late_after_s: float = 60.0,
        max_backlog_s: float = 86400.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
        fetch_told: Callable[[], Awaitable[dict[tuple[str, str], str]]] | None = None,
    ):
        self.store = store
        self.fetch_rules = fetch_rules
        self.fetch_devices = fetch_devices
        self.post = post
        self.interval_s = interval_s
        self.late_after_ms = int(late_after_s * 1000)
        self.max_backlog_ms = int(max_backlog_s * 1000)
        self.limit = asyncio.Semaphore(concurrency)
        self.clock = clock
        self.tracks: dict[tuple[str, str], Track] = {}
        self.fetch_told = fetch_told
        self.told: dict[tuple[str, str], str] | None = None
        self.versions: dict[str, int] = {}  # rule id -> updated_ms we built tracks for

    # ---- one cycle ---------------------------------------------------------------------

    async def cycle(self) -> CycleReport:
        started = time.perf_counter()
        report = CycleReport()
        now = int(self.clock() * 1000)
        rules = [r for r in await self.fetch_rules() if r["kind"] in ("threshold", "deadman")]
        rules = [r for r in rules if r.get("enabled", True)]
        if self.told is None and self.fetch_told is not None:
            try:
                self.told = await self.fetch_told()
            except Exception as error:  # then every first level is posted: no harm
                report.errors.append(f"alert states: {error}")
        self._forget_changed(rules)
        owned: dict[str, OwnedDevices] = {}
        for owner in sorted({str(r["owner_id"]) for r in rules}):
            try:
                owned[owner] = OwnedDevices(await self.fetch_devices(owner))
            except Exception as error:  # one owner's registry trouble skips only their rules
                report.errors.append(f"devices of owner {owner}: {error}")
        report.rules = len(rules)
        deadman, threshold = [], []
        for rule in rules:
            mine = owned.get(str(rule["owner_id"]))
            devices = mine.select(rule) if mine is not None else []
            report.devices += len(devices)
            (deadman if rule["kind"] == "deadman" else threshold).append((rule, devices))
        # Deadman first: an offline device's value alerts are then held, not sent.
        await self._post_all(await self._deadmen(deadman, now, report), report)
        await self._post_all(await self._thresholds(threshold, now, report), report)
        report.seconds = time.perf_counter() - started
        return report

    def _forget_changed(self, rules: list[dict]) -> None:
        """A changed rule is judged afresh (its readings again from `for` back); what
        the alerts service was told is kept. A deleted rule is forgotten."""
        current = {r["id"]: r.get("updated_ms", 0) for r in rules}
        changed = {rid for rid, version in self.versions.items() if current.get(rid) != version}
        if changed:
            self.tracks = {
                key: (Track(posted=track.posted) if key[0] in current else None)
                if key[0] in changed
                else track
                for key, track in self.tracks.items()
            }
            self.tracks = {key: track for key, track in self.tracks.items() if track is not None}
        self.versions = current

    def _track(self, key: tuple[str, str]) -> Track:
        track = self.tracks.get(key)
        if track is None:
            # After a start, what the alerts service was last told (None: unknown, so
            # the first level is posted whatever it is; alerts ignores a repeat).
            posted = self.told.get(key, "ok") if self.told is not None else None
            track = self.tracks[key] = Track(posted=posted)
        return track

    async def _post_all(self, items: list[tuple[tuple[str, str], str, dict]], report) -> None:
        """Post a cycle's results; a track counts as told only once alerts took it."""
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            try:
                await self.post([payload for _, _, payload in chunk])
            except Exception as error:
                # Nothing is marked told: the next cycle posts these levels again.
                report.errors.append(f"posting to alerts: {error}")
                return
            for key, level, _ in chunk:
                track = self.tracks.get(key)
                if track is None:
                    continue
                if level == "late":
                    track.backlog = []
                else:
                    track.posted = level
            report.posted += len(chunk)

    async def _query(self, call, *args):
        async with self.limit:
            return await asyncio.to_thread(call, *args)

    # ---- deadman -----------------------------------------------------------------------

    async def _deadmen(self, pairs, now, report) -> list:
        """Every deadman rule from one last-seen lookup per QUERY_DEVICES devices."""
        devices = sorted({d.id for _, group in pairs for d in group})
        chunks = [devices[i : i + QUERY_DEVICES] for i in range(0, len(devices), QUERY_DEVICES)]
        results = await asyncio.gather(
            *(self._query(self.store.last_seen, chunk) for chunk in chunks),
            return_exceptions=True,
        )
        report.queries += len(chunks)
        seen: dict[str, int] = {}
        for result in results:
            if isinstance(result, BaseException):
                # Without knowing who was seen, nobody is declared offline this cycle.
                report.errors.append(f"last seen: {type(result).__name__}: {result}")
                return []
            seen.update(result)
        out = []
        for rule, group in pairs:
            for device in group:
                key = (rule["id"], device.id)
                track = self._track(key)
                last = seen.get(device.id)
                level = deadman_level(rule, last, rule.get("created_ms", now), now)
                if level != track.posted:
                    out.append((key, level, deadman_payload(rule, device, level, last, now)))
        return out

    # ---- thresholds --------------------------------------------------------------------

    def _start_of(self, rule: dict, track: Track | None, now: int) -> int:
        if track is None or track.cursor is None:
            # First look: enough history to know whether a breach has held for `for`.
            return now - int(rule["for_s"] * 1000) - int(max(3 * self.interval_s, 60) * 1000)
        return max(track.cursor + 1, now - self.max_backlog_ms)

    async def _thresholds(self, pairs, now, report) -> list:
        """Every threshold rule in bulk: rules reading the same field share queries over
        the union of their devices (chunks of QUERY_DEVICES), each from the oldest
        cursor among them; every rule then takes its devices' new readings."""
        calls = self._plan_queries(pairs, now)

        async def run(field_name, chunk, start):
            found = await self._query(
                self.store.query, chunk, [field_name], start, now + FUTURE_SLACK_MS
            )
            return field_name, found

        results = await asyncio.gather(*(run(*call) for call in calls), return_exceptions=True)
        report.queries += len(calls)
        readings, failed = _sort_results(calls, results, report)
        out = []
        for rule, devices in pairs:
            if rule["field"] in failed:
                continue  # judged next cycle from the same cursor: nothing is skipped
            for device in devices:
                key = (rule["id"], device.id)
                track = self._track(key)
                series = readings.get((rule["field"], device.id), [])
                out += self._advance(rule, device, key, track, series, now)
        return out

    def _plan_queries(self, pairs, now) -> list[tuple[str, list[str], int]]:
        """(field, device chunk, start) per query: devices far behind apart."""
        wanted: dict[str, dict[str, int]] = {}  # field -> device -> start
        for rule, devices in pairs:
            starts = wanted.setdefault(rule["field"], {})
            for device in devices:
                start = self._start_of(rule, self.tracks.get((rule["id"], device.id)), now)
                starts[device.id] = min(starts.get(device.id, start), start)
        recent_from = now - self.late_after_ms - int(2 * self.interval_s * 1000)
        calls: list[tuple[str, list[str], int]] = []
        for field_name, starts in wanted.items():
            # Devices far behind (back from an outage) are queried apart, so the others
            # are not re-read from the distant past.
            recent = [d for d, start in starts.items() if start >= recent_from]
            behind = [d for d, start in starts.items() if start < recent_from]
            for group in (recent, behind):
                for first in range(0, len(group), QUERY_DEVICES):
                    chunk = group[first : first + QUERY_DEVICES]
                    calls.append((field_name, chunk, min(starts[d] for d in chunk)))

        return calls

    def _advance(self, rule, device, key, track: Track, series, now) -> list:
        out = []
        warming = track.cursor is None
        fresh, late = self._split_new(track, series, now, warming)
        for ts, value in fresh:
            track.state.feed(rule, ts, value)
        if late and len(track.backlog) < MAX_BACKLOG_READINGS:
            track.backlog.extend(late[: MAX_BACKLOG_READINGS - len(track.backlog)])
        newest = max((ts for ts, _ in series), default=None)
        if newest is not None:
            track.cursor = max(track.cursor or newest, newest)
        elif warming:
            track.cursor = now - self.late_after_ms
        if track.backlog and not late:
            # The backlog has drained: one digest, if it held anything worth telling.
            digest = digest_backlog(rule, sorted(track.backlog))
            if digest.breaches:
                out.append((key, "late", late_payload(rule, device, digest)))
            else:
                track.backlog = []
        level = track.state.reported(rule)
        if level != track.posted:
            out.append((key, level, threshold_payload(rule, device, level, track.state, now)))
        return out

    def _split_new(self, track: Track, series, now, warming: bool) -> tuple[list, list]:
        """The numeric readings after the cursor: (fresh, late); none late while warming."""
        fresh, late = [], []
        for ts, value in series:
            if track.cursor is not None and ts <= track.cursor:
                continue
            if isinstance(value, bool | int | float):
                if not warming and now - ts > self.late_after_ms:
                    late.append((ts, float(value)))
                else:
                    fresh.append((ts, float(value)))
        return fresh, late

    # ---- schedule ----------------------------------------------------------------------

    async def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                report = await self.cycle()
                metrics.MONITOR_CYCLE_SECONDS.observe(report.seconds)
                metrics.MONITOR_POSTED.inc(report.posted)
                if report.errors:
                    metrics.MONITOR_CYCLE_FAILURES.inc()
                    log.warning("monitor cycle: %s", "; ".join(report.errors[:5]))
                log.debug(
                    "monitor cycle: %d rules, %d devices, %d queries, %d posted in %.3f s",
                    report.rules, report.devices, report.queries, report.posted, report.seconds,
                )  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception as error:
                metrics.MONITOR_CYCLE_FAILURES.inc()
                # Mostly the alerts service or the store being away: one line, no trace.
                log.warning(
                    "monitor cycle failed (%s: %s); next one in %.1f s",
                    type(error).__name__, error, self.interval_s,
                )  # fmt: skip
            await asyncio.sleep(max(self.interval_s - (time.monotonic() - started), 0.05))


def _sort_results(calls, results, report) -> tuple[dict[tuple[str, str], list], set[str]]:
    """Readings per (field, device), and the fields whose query failed (reported)."""
    readings: dict[tuple[str, str], list] = {}
    failed: set[str] = set()
    for call, result in zip(calls, results, strict=True):
        if isinstance(result, BaseException):
            failed.add(call[0])
            report.errors.append(f"field {call[0]!r}: {type(result).__name__}: {result}")
            continue
        field_name, found = result
        for device_id, fields in found.items():
            readings[(field_name, device_id)] = fields.get(field_name, [])
    return readings, failed
