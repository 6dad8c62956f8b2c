"""The time ranges a device page offers, and custom ones typed by a person (UTC)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

PRESETS = {"1h": ("last hour", 3_600_000), "1d": ("last day", 86_400_000),
           "7d": ("last week", 7 * 86_400_000)}  # fmt: skip


class RangeInvalid(ValueError):
    pass


@dataclass(frozen=True)
class TimeRange:
    key: str  # 1h, 1d, 7d or custom
    start_ms: int
    stop_ms: int
    label: str


def parse_moment(text: str, what: str) -> int:
    try:
        if not text.isascii():  # fromisoformat takes any character between date and time
            raise ValueError(text)
        moment = datetime.fromisoformat(text.strip())
        stamp = int(moment.timestamp() * 1000) if moment.tzinfo else None
        if stamp is None:  # the form says UTC
            stamp = int(moment.replace(tzinfo=UTC).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise RangeInvalid(f"{what} {text[:40]!r} is not a time like 2026-11-27T10:30") from None
    return stamp


def pick_range(key: str | None, start: str | None, stop: str | None, now_ms=None) -> TimeRange:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    key = key or "1h"
    if key in PRESETS:
        label, span = PRESETS[key]
        return TimeRange(key, now_ms - span, now_ms, label)
    if key != "custom":
        raise RangeInvalid(f"range {key[:20]!r} is not one of 1h, 1d, 7d, custom")
    if not start or not stop:
        raise RangeInvalid("a custom range needs both a start and an end")
    start_ms, stop_ms = parse_moment(start, "start"), parse_moment(stop, "end")
    if stop_ms <= start_ms:
        raise RangeInvalid("the end must be later than the start")
    if stop_ms - start_ms > 366 * 86_400_000:
        raise RangeInvalid("choose at most a year")
    return TimeRange("custom", start_ms, stop_ms, "custom range")


def form_value(ts_ms: int) -> str:
    """A datetime-local input's value (UTC, minutes)."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")
