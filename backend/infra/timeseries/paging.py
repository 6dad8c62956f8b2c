"""Answers in pages: at most `limit` values each, and where the next one starts.

A page is cut between two timestamps, never inside one: every value stamped with the
cut's ms goes to the next page, which starts there (`next_start`, inclusive). So a
client that repeats the query with start=next_start (same stop) gets every value exactly
once and in order, however many devices and fields share a millisecond. The one case
this cannot serve is a single ms holding more than `limit` values; the query API makes
that impossible by refusing more fields than `limit` for its one device.

Both adapters feed `cut` with values sorted by (ts, device, field) and stop reading
once it returns, so a page never holds more than limit + 1 values whatever the range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fieldline_backend.infra.timeseries import QueryError, Value

Series = dict[str, dict[str, list[tuple[int, Value]]]]
# One stored value: (ts_ms, device_id, field, value), the order pages are cut in.
Row = tuple[int, str, str, Value]


@dataclass(frozen=True)
class Page:
    series: Series  # {device_id: {field: [(ts_ms, value), ...]}}, as TimeSeriesStore.query
    next_start: int | None  # None: nothing left in the range; else the next page's start


def cut(rows: Iterable[Row], device_ids: Sequence[str], limit: int) -> Page:
    """The first page of rows (sorted by ts, device, field): at most `limit` values,
    the last ms complete. Reads at most limit + 1 rows from the iterable."""
    if limit < 1:
        raise QueryError(f"limit must be at least 1, not {limit}")
    series: Series = {d: {} for d in device_ids}
    kept = 0
    held: list[Row] = []  # the values of the current ms, kept once the ms is complete
    for row in rows:
        if held and row[0] != held[0][0]:
            _keep(series, held)
            kept += len(held)
            held = []
        if kept + len(held) == limit:  # this row would be one too many: cut before its ms
            if kept == 0:
                raise QueryError(
                    f"more than {limit} values share the millisecond {row[0]}; "
                    "ask for fewer fields or a larger limit"
                )
            return Page(series, held[0][0] if held else row[0])
        held.append(row)
    _keep(series, held)
    return Page(series, None)


def _keep(series: Series, rows: list[Row]) -> None:
    for ts, device, name, value in rows:
        series.setdefault(device, {}).setdefault(name, []).append((ts, value))
