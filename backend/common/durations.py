"""Durations as people write them in rules and previews: `30s`, `5m`, `2h`, `1d`, or
seconds (shared by alerts, monitor and the gateway)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# ASCII: a Unicode \d takes digits like '٣' (and float() reads them) that nobody types here.
_PATTERN = re.compile(r"^\s*(\d{1,20}(?:\.\d{1,20})?)\s*(ms|s|m|h|d|w)?\s*$", re.ASCII)
MAX_SECONDS = 366 * 86400


def parse_duration(value: object) -> float:
    """Seconds, from `"5m"`, `"30s"`, `90`; ValueError with a hint otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a duration; write e.g. '30s', '5m', '2h', '1d' or seconds"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    if not (0 <= seconds <= MAX_SECONDS) or seconds != seconds:
        raise ValueError("a duration must be between 0 s and 366 days")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact way to write a duration: 300 -> '5m', 90 -> '90s'."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds}s"


# The longest period a rule preview covers (the monitor reads that much history; the
# gateway names the bound by its own fields).
PREVIEW_MAX_PERIOD_MS = 92 * 86400 * 1000
