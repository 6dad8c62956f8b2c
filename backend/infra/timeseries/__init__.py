"""The time-series port: InfluxDB (1.x HTTP API) or the embedded SQLite store.

Schema (design brief): measurement `telemetry`, tags `device_id`, `owner` and the
device's metadata tags, one field per value, ms timestamps. A point written twice with
the same series key and timestamp lands once.

The storage service writes and answers the query API; the monitor evaluates rules.
Both use only this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

Value = float | int | bool

MEASUREMENT = "telemetry"


@dataclass(frozen=True)
class Point:
    device_id: str
    ts_ms: int
    fields: dict[str, Value]
    tags: dict[str, str] = field(default_factory=dict)  # owner + metadata tags


class TimeSeriesUnavailable(Exception):
    """The store cannot be reached or refused a write; callers hold and retry."""


class TimeSeriesStore(Protocol):
    def ensure_schema(self) -> None:
        """Create the database/table and retention policy if missing (idempotent)."""

    def write(self, points: Sequence[Point]) -> None:
        """Write a batch durably or raise TimeSeriesUnavailable."""

    def query(
        self,
        device_ids: Sequence[str],
        fields: Sequence[str],
        start_ms: int,
        stop_ms: int,
        every_ms: int | None = None,
        agg: str | None = None,
    ) -> dict[str, dict[str, list[tuple[int, Value]]]]:
        """{device_id: {field: [(ts_ms, value), ...]}} in time order, for the devices
        given, in [start_ms, stop_ms). With agg (mean, min, max, last, count) and
        every_ms: one value per window, stamped with the window start. Bulk on purpose:
        the monitor asks once per rule, for all the rule's devices."""

    def last_seen(self, device_ids: Sequence[str]) -> dict[str, int]:
        """{device_id: ts_ms of its newest point}; devices with no point are absent."""

    def close(self) -> None: ...
