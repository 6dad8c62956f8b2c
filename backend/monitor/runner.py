"""One monitor cycle: every enabled rule evaluated against the time-series store, each
(rule, device) level that changed posted to the alerts service.

Per rule one bulk query over all its devices (two when some of them are catching up
after an outage), run a few at a time in threads. Readings are processed once, in
timestamp order, from a cursor per (rule, device); a reading that arrives more than
`late_after` after it was taken is backlog: it goes into a digest (one notification
per device and rule once the backlog has drained), never into the live level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fieldline_backend.monitor.devices import WatchedDevice, select_devices
from fieldline_backend.monitor.evaluation import SeriesState, deadman_level, digest_backlog
from fieldline_backend.monitor.notify import deadman_payload, late_payload, threshold_payload

log = logging.getLogger(__name__)

FUTURE_SLACK_MS = 60_000  # readings stamped a little ahead (device clocks) still count
MAX_BACKLOG_READINGS = 100_000


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
        store,
        fetch_rules: Callable[[], Awaitable[list[dict]]],
        fetch_devices: Callable[[str], Awaitable[list[WatchedDevice]]],
        post: Callable[[list[dict]], Awaitable[None]],
        interval_s: float = 10.0,
        late_after_s: float = 60.0,
        max_backlog_s: float = 86400.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
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
        self.versions: dict[str, int] = {}  # rule id -> updated_ms we built tracks for

    # ---- one cycle ---------------------------------------------------------------------

    async def cycle(self) -> CycleReport:
        started = time.perf_counter()
        report = CycleReport()
        now = int(self.clock() * 1000)
        rules = [r for r in await self.fetch_rules() if r["kind"] in ("threshold", "deadman")]
        rules = [r for r in rules if r.get("enabled", True)]
        self._forget_changed(rules)
        owned: dict[str, list[WatchedDevice]] = {}
        for owner in sorted({str(r["owner_id"]) for r in rules}):
            try:
                owned[owner] = await self.fetch_devices(owner)
            except Exception as error:  # one owner's registry trouble skips only their rules
                report.errors.append(f"devices of owner {owner}: {error}")
        report.rules = len(rules)
        deadman, threshold = [], []
        for rule in rules:
            devices = select_devices(rule, owned.get(str(rule["owner_id"]), []))
            report.devices += len(devices)
            (deadman if rule["kind"] == "deadman" else threshold).append((rule, devices))
        # Deadman first: an offline device's value alerts are then held, not sent.
        batches = await asyncio.gather(*(self._deadman(r, d, now, report) for r, d in deadman))
        await self._post_all([p for batch in batches for p in batch], report)
        batches = await asyncio.gather(*(self._threshold(r, d, now, report) for r, d in threshold))
        await self._post_all([p for batch in batches for p in batch], report)
        report.seconds = time.perf_counter() - started
        return report

    def _forget_changed(self, rules: list[dict]) -> None:
        current = {r["id"]: r.get("updated_ms", 0) for r in rules}
        stale = {rid for rid, version in self.versions.items() if current.get(rid) != version}
        if stale:
            self.tracks = {k: v for k, v in self.tracks.items() if k[0] not in stale}
        self.versions = current

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

    async def _deadman(self, rule, devices, now, report) -> list:
        if not devices:
            return []
        try:
            seen = await self._query(self.store.last_seen, [d.id for d in devices])
            report.queries += 1
        except Exception as error:
            report.errors.append(f"rule {rule['id']}: {error}")
            return []
        out = []
        for device in devices:
            key = (rule["id"], device.id)
            track = self.tracks.setdefault(key, Track())
            level = deadman_level(rule, seen.get(device.id), rule.get("created_ms", now), now)
            if level != track.posted:
                out.append(
                    (key, level, deadman_payload(rule, device, level, seen.get(device.id), now))
                )
        return out

    # ---- thresholds --------------------------------------------------------------------

    def _start_of(self, rule: dict, track: Track | None, now: int) -> int:
        if track is None or track.cursor is None:
            # First look: enough history to know whether a breach has held for `for`.
            return now - int(rule["for_s"] * 1000) - int(max(3 * self.interval_s, 60) * 1000)
        return max(track.cursor + 1, now - self.max_backlog_ms)

    async def _threshold(self, rule, devices, now, report) -> list:
        if not devices:
            return []
        starts = {
            d.id: self._start_of(rule, self.tracks.get((rule["id"], d.id)), now) for d in devices
        }
        recent_from = now - self.late_after_ms - int(2 * self.interval_s * 1000)
        # Devices far behind (back from an outage) get their own, longer query so the
        # others are not re-read from the distant past.
        groups = [
            [d for d in devices if starts[d.id] >= recent_from],
            [d for d in devices if starts[d.id] < recent_from],
        ]
        readings: dict[str, list] = {}
        for group in groups:
            if not group:
                continue
            start = min(starts[d.id] for d in group)
            try:
                found = await self._query(
                    self.store.query,
                    [d.id for d in group],
                    [rule["field"]],
                    start,
                    now + FUTURE_SLACK_MS,
                )
                report.queries += 1
            except Exception as error:
                report.errors.append(f"rule {rule['id']}: {error}")
                return []
            for device_id, fields in found.items():
                readings[device_id] = fields.get(rule["field"], [])
        out = []
        for device in devices:
            key = (rule["id"], device.id)
            track = self.tracks.setdefault(key, Track())
            out += self._advance(rule, device, key, track, readings.get(device.id, []), now)
        return out

    def _advance(self, rule, device, key, track: Track, series, now) -> list:
        out = []
        warming = track.cursor is None
        fresh, late = [], []
        for ts, value in series:
            if track.cursor is not None and ts <= track.cursor:
                continue
            if isinstance(value, bool | int | float):
                if not warming and now - ts > self.late_after_ms:
                    late.append((ts, float(value)))
                else:
                    fresh.append((ts, float(value)))
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

    # ---- schedule ----------------------------------------------------------------------

    async def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                report = await self.cycle()
                if report.errors:
                    log.warning("monitor cycle: %s", "; ".join(report.errors[:5]))
                log.debug(
                    "monitor cycle: %d rules, %d devices, %d queries, %d posted in %.3f s",
                    report.rules, report.devices, report.queries, report.posted, report.seconds,
                )  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Mostly the alerts service or the store being away: one line, no trace.
                log.warning(
                    "monitor cycle failed (%s: %s); next one in %.1f s",
                    type(error).__name__, error, self.interval_s,
                )  # fmt: skip
            await asyncio.sleep(max(self.interval_s - (time.monotonic() - started), 0.05))
