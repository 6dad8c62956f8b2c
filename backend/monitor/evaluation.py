"""Event-time evaluation of one (rule, device): readings in, levels out. Pure logic.

`SeriesState` is fed readings in timestamp order. It keeps the hysteretic level and,
for warn and crit, since when the device has been at that level or worse; the level it
reports is the worst one held for the rule's `for` duration, measured between the
readings' own timestamps (never the clock of the evaluator). So a backlog drained
late is judged by when its readings were taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fieldline_backend.monitor.levels import FIRING, RANK, next_level, raw_level


@dataclass
class SeriesState:
    level: str = "ok"  # hysteretic level of the newest reading
    since: dict[str, int] = field(default_factory=dict)  # level -> ts the run began
    last_ts: int | None = None
    last_value: float | None = None
    recent: list[tuple[int, float]] = field(default_factory=list)  # for mails

    def feed(self, rule: dict, ts: int, value) -> None:
        self.level = next_level(rule, value, self.level)
        for level in FIRING:
            if RANK[self.level] >= RANK[level]:
                self.since.setdefault(level, ts)
            else:
                self.since.pop(level, None)
        self.last_ts, self.last_value = ts, float(value)
        self.recent = [*self.recent[-4:], (ts, float(value))]

    def reported(self, rule: dict) -> str:
        """The worst level held for at least the rule's `for`, at the newest reading."""
        if self.last_ts is None:
            return "ok"
        hold_ms = rule["for_s"] * 1000
        for level in ("crit", "warn"):
            start = self.since.get(level)
            if start is not None and self.last_ts - start >= hold_ms:
                return level
        return "ok"


@dataclass
class LateDigest:
    """What a drained backlog held, summed up for one mail instead of many alarms."""

    readings: int = 0
    breaches: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    worst_value: float | None = None
    worst_level: str = "ok"
    worst_ts: int | None = None
    would_have_fired: int = 0  # breaches held for `for`: notifications it would have sent

    def add(self, rule: dict, ts: int, value, level: str) -> None:
        self.readings += 1
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if level != "ok":
            self.breaches += 1
            worse = RANK[level] > RANK[self.worst_level]
            if worse or (level == self.worst_level and _further(rule, value, self.worst_value)):
                self.worst_level, self.worst_value, self.worst_ts = level, float(value), ts

    def as_json(self) -> dict:
        return {
            "readings": self.readings,
            "breaches": self.breaches,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "worst_value": self.worst_value,
            "worst_level": self.worst_level,
            "worst_ts": self.worst_ts,
            "would_have_fired": self.would_have_fired,
        }


def _further(rule: dict, value, than) -> bool:
    if than is None:
        return True
    if rule["condition"] == "below":
        return value < than
    if rule["condition"] == "above":
        return value > than
    return abs(value) > abs(than)


def digest_backlog(rule: dict, readings: list[tuple[int, float]]) -> LateDigest:
    """Judge a late backlog on its own: how many readings breached, how many times a
    notification would have gone out had they arrived on time."""
    digest = LateDigest()
    state = SeriesState()
    before = "ok"
    for ts, value in readings:
        state.feed(rule, ts, value)
        digest.add(rule, ts, value, raw_level(rule, float(value)))
        now = state.reported(rule)
        if now != before and now != "ok":
            digest.would_have_fired += 1
        before = now
    return digest


def deadman_level(rule: dict, last_seen_ms: int | None, since_ms: int, now_ms: int) -> str:
    """crit once a device has sent nothing for `for` (counted from the rule's start
    when it never sent), else ok."""
    reference = last_seen_ms if last_seen_ms is not None else since_ms
    return "crit" if now_ms - reference >= rule["for_s"] * 1000 else "ok"


def replay(rule: dict, readings: list[tuple[int, float]]) -> list[tuple[int, str, float]]:
    """Every change of the reported level over a reading series: (ts, level, value).
    The preview uses it to show what a rule would have done."""
    state = SeriesState()
    changes = []
    before = "ok"
    for ts, value in readings:
        state.feed(rule, ts, value)
        now = state.reported(rule)
        if now != before:
            changes.append((ts, now, float(value)))
            before = now
    return changes
