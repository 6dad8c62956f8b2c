"""Charts drawn on the server as SVG: how many points to ask for, and the drawing.

The server never sends more points than the chart has pixels: the window (`every`)
is chosen so that the windows a range can touch are at most the chart's width, and the
query API aggregates per window (a week of 1-minute data on a 720 px chart is 720
means, not 10,080 readings).
"""

from __future__ import annotations

import math
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


# Units by value name (a sensor prefix such as outside_temperature keeps the unit);
# metadata `unit_<name>` overrides. What device/sensors.py reports.
UNITS = {
    "temperature": "°C", "chip_temperature": "°C", "humidity": "%", "pressure": "hPa",
    "battery": "%", "voltage": "V", "rssi": "dBm",
}  # fmt: skip
PAD = 4  # px above the highest and below the lowest value


def unit_for(name: str, metadata: dict | None = None) -> str | None:
    own = (metadata or {}).get(f"unit_{name}")
    if isinstance(own, str) and own.strip():
        return own.strip()[:16]
    for known, unit in UNITS.items():
        if name == known or name.endswith("_" + known):
            return unit
    return None


def nice_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """Round values in [low, high], evenly spaced by 1, 2, 2.5 or 5 x 10^k: at least two
    when high > low, at most `most`."""
    if not high > low:
        return [low]
    raw = (high - low) / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    ticks = [k * step for k in range(first, math.floor(high / step + 1e-9) + 1)]
    if len(ticks) < 2:  # a narrow range between two round values: its own ends
        return [low, high]
    return ticks


def tick_label(value: float, ticks: list[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step, decimals) - step) > step * 1e-9:
        decimals += 1  # a step of 2.5 or 0.25
    return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    """An SVG line chart's geometry; x and y in the viewBox's units."""

    path: str
    count: int
    low: float | None
    high: float | None
    width: int
    height: int
    ticks: tuple[Tick, ...] = ()
    times: str = ""  # the points' window numbers after the first (compact, for the script)
    values: str = ""  # their values, "1"/"0" for on/off
    first_ms: int | None = None


def draw(
    points: list,
    start_ms: int,
    stop_ms: int,
    width: int,
    height: int = 160,
    every_ms: int | None = None,
    boolean: bool = False,
    decimals: int = 1,
) -> Chart:
    """A polyline path through (ts, value) points scaled into width x height, y-axis
    ticks, and the points in a compact form for the pointer readout; booleans plot as
    0/1 (the axis says off and on)."""
    values = [(ts, float(v)) for ts, v in points if v is not None]
    if not values:
        return Chart("", 0, None, None, width, height)
    low = 0.0 if boolean else min(v for _, v in values)
    high = 1.0 if boolean else max(v for _, v in values)
    spread = high - low or 1.0
    span = max(stop_ms - start_ms, 1)
    usable_h = height - 2 * PAD

    def y_of(value: float) -> float:
        return PAD + usable_h - (value - low) / spread * usable_h

    parts = [
        f"{(ts - start_ms) / span * width:.{decimals}f},{y_of(value):.{decimals}f}"
        for ts, value in values
    ]
    levels = [0.0, 1.0] if boolean else nice_ticks(low, low + spread if high == low else high)
    labels = ["off", "on"] if boolean else [tick_label(v, levels) for v in levels]
    ticks = tuple(Tick(round(y_of(v), 1), label) for v, label in zip(levels, labels, strict=True))
    first = values[0][0]
    step = every_ms or 1
    return Chart(
        "M" + " L".join(parts), len(parts), low, high, width, height, ticks,
        ",".join(str((ts - first) // step) for ts, _ in values),
        ",".join(f"{v:.6g}" for _, v in values), first,
    )  # fmt: skip


def sparkline(points: list, width: int = 120, height: int = 28) -> str:
    """A small path for the devices list; empty when there is nothing to draw."""
    if not points:
        return ""
    start = points[0][0]
    stop = points[-1][0] + 1
    # Whole pixels: a 120 x 28 line needs no more, and 300 rows of it are half the list.
    return draw(points, start, stop, width, height, decimals=0).path


def when(ts_ms: int | None) -> str:
    if not ts_ms:
        return "never"
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stamp(iso: str | None) -> str:
    """An API time (ISO 8601) as `when` writes times; "" for none."""
    if not iso:
        return ""
    return when(int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000))


def number(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
