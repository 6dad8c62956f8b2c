"""How big a telemetry query may be (docs/pipeline.md, "Query API"): what keeps an
answer, and the work behind it, bounded whatever the time range.

- `limit` values per answer, at most FIELDLINE_QUERY_MAX_POINTS (the default); a longer
  answer is cut between two timestamps and says where the rest starts;
- at most 64 fields per query, as per reading, and no more than `limit` (a page never
  splits a millisecond, so one ms of the device's fields must fit in it);
- with `every`: the range touches at most FIELDLINE_QUERY_MAX_POINTS windows.

A query over any of these is a 422 naming the parameter, in FastAPI's validation shape.
"""

from __future__ import annotations

from fastapi import HTTPException

MAX_FIELDS = 64  # the contract's values per reading (storage/readings.py)


def check_query_size(
    fields: list[str], start: int, stop: int, every: int | None, limit: int | None, cap: int
) -> int:
    """The limit to use (the cap when none is asked), or a 422 naming what is too big."""
    if limit is None:
        limit = cap
    if limit > cap:
        _refuse("limit", f"limit {limit} is over the cap of {cap} values per answer", cap)
    if len(fields) > min(MAX_FIELDS, limit):
        _refuse(
            "fields",
            f"{len(fields)} fields in one query; at most {min(MAX_FIELDS, limit)} "
            f"(64, and no more than limit={limit})",
            cap,
        )
    # The windows are aligned to the epoch: a range touches one more than it spans.
    windows = (stop - 1) // every - start // every + 1 if every and stop > start else 0
    if windows > cap:
        _refuse(
            "every",
            f"start..stop ({stop - start} ms) in windows of every={every} ms touches "
            f"{windows} windows, over the cap of {cap}; choose a longer every or a "
            "shorter range",
            cap,
        )
    return limit


def _refuse(parameter: str, message: str, cap: int):
    raise HTTPException(
        status_code=422,
        detail=[
            {
                "loc": ["query", parameter],
                "msg": message,
                "type": "value_error",
                "ctx": {"max_points": cap},
            }
        ],
    )
