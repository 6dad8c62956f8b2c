"""Charts drawn on the server as SVG: how many points to ask for, and the drawing.

The server never sends more points than the chart has pixels: the window (`every`)
is chosen so that the windows a range can touch are at most the chart's width, and the
query API aggregates per window (a week of 1-minute data on a 720 px chart is 720
means, not 10,080 readings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fieldline_backend.common.windows import window_ms  # noqa: F401 - the pages size charts

MIN_WIDTH = 60
MAX_WIDTH = 4000
DEFAULT_WIDTH = 360  # the first render, before the page's script reports the real width


def clamp_width(width: int | None) -> int:
    if width is None:
        return DEFAULT_WIDTH
    return max(MIN_WIDTH, min(MAX_WIDTH, int(width)))


async def read_all_pages(api, path: str, **params) -> dict[str, list]:
    """{field: points} of a query answer and the pages after it: the query API sends at
    most FIELDLINE_QUERY_MAX_POINTS values per answer (several charts' windows together
    can be more) and says where the rest starts."""
    fields: dict[str, list] = {}
    while True:
        answer = await api.get(path, **params)
        for name, points in answer["fields"].items():
            fields.setdefault(name, []).extend(points)
        if answer.get("next_start") is None:
            return fields
        params = {**params, "start": answer["next_start"]}


def windows_touched(start_ms: int, stop_ms: int, every_ms: int) -> int:
    """How many epoch-aligned windows of every_ms overlap [start_ms, stop_ms)."""
    if stop_ms <= start_ms:
        return 0
    return (stop_ms - 1) // every_ms - start_ms // every_ms + 1


@dataclass(frozen=True)
class Chart:
    """An SVG line chart's geometry; x and y in the viewBox's units."""

    path: str
    count: int
    low: float | None
    high: float | None
    width: int
    height: int


def draw(points: list, start_ms: int, stop_ms: int, width: int, height: int = 160) -> Chart:
    """A polyline path through (ts, value) points scaled into width x height; booleans
    plot as 0/1."""
    values = [(ts, float(v)) for ts, v in points if v is not None]
    if not values:
        return Chart("", 0, None, None, width, height)
    low = min(v for _, v in values)
    high = max(v for _, v in values)
    spread = high - low or 1.0
    span = max(stop_ms - start_ms, 1)
    pad = 4
    usable_h = height - 2 * pad
    parts = []
    for ts, value in values:
        x = (ts - start_ms) / span * width
        y = pad + usable_h - (value - low) / spread * usable_h
        parts.append(f"{x:.1f},{y:.1f}")
    return Chart("M" + " L".join(parts), len(parts), low, high, width, height)


def sparkline(points: list, width: int = 120, height: int = 28) -> str:
    """A small path for the devices list; empty when there is nothing to draw."""
    if not points:
        return ""
    start = points[0][0]
    stop = points[-1][0] + 1
    return draw(points, start, stop, width, height).path


def when(ts_ms: int | None) -> str:
    if not ts_ms:
        return "never"
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
