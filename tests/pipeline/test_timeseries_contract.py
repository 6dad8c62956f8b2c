"""One contract, both time-series adapters: InfluxDB (shared server, a database of its
own) and the embedded SQLite store answer the same questions the same way."""

from __future__ import annotations

import math
import secrets
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline_backend.infra.timeseries import (
    Marks,
    Point,
    QueryError,
)
from fieldline_backend.infra.timeseries.influx import InfluxStore
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore
from fieldline_backend.infra.timeseries.tags import representable_tag
from tests.pipeline.support import influx_select, influx_statement

BASE = 1_764_000_000_000


@pytest.fixture(params=["influx", "sqlite"])
def store(request, tmp_path):
    if request.param == "influx":
        url = request.getfixturevalue("influx_url")
        database = f"fltest_{secrets.token_hex(6)}"
        adapter = InfluxStore(url, database)
        adapter.ensure_schema()
        yield adapter
        adapter.close()
        influx_statement(url, f'DROP DATABASE "{database}"')
    else:
        adapter = SQLiteStore(tmp_path / "series.db")
        adapter.ensure_schema()
        yield adapter
        adapter.close()


def point(device: str, ts: int, seq=None, boot=None, dropped=None, **fields) -> Point:
    """A reading as storage writes it: its values, and its marks apart (arrived at ts)."""
    return Point(device, ts, fields, {"owner": "o"}, Marks(ts, seq, boot, dropped))


def test_raw_reads_in_order_within_bounds_and_a_rewrite_lands_once(store):
    store.write([point("a", BASE + i, t=float(i), on=i % 2 == 0) for i in range(5)])
    store.write([point("a", BASE + 2, t=2.0, on=True)])  # the same reading again
    store.write([point("b", BASE + 1, t=99.0)])
    got = store.query(["a", "b", "c"], ["t", "on"], BASE + 1, BASE + 4)
    assert got == {
        "a": {
            "t": [(BASE + i, float(i)) for i in (1, 2, 3)],
            "on": [(BASE + i, i % 2 == 0) for i in (1, 2, 3)],
        },
        "b": {"t": [(BASE + 1, 99.0)]},
        "c": {},
    }
    assert store.last_seen(["a", "b", "c"]) == {"a": BASE + 4, "b": BASE + 1}


def test_aggregates_per_window_stamped_with_the_window_start(store):
    values = [3.0, 1.0, 2.0, 10.0, 20.0]
    store.write([point("a", BASE + i * 400, t=v) for i, v in enumerate(values)])
    windows = {
        "mean": [2.0, 15.0],
        "min": [1.0, 10.0],
        "max": [3.0, 20.0],
        "last": [2.0, 20.0],
        "count": [3, 2],
    }
    for agg, expected in windows.items():
        got = store.query(["a"], ["t"], BASE, BASE + 2000, every_ms=1000, agg=agg)["a"]["t"]
        assert got == [(BASE, expected[0]), (BASE + 1000, expected[1])], agg
        assert all(type(v) is type(expected[0]) for _, v in got), agg


def test_mean_of_a_boolean_field_is_refused(store):
    store.write([point("a", BASE, on=True), point("a", BASE + 1, on=False)])
    with pytest.raises(QueryError):
        store.query(["a"], ["on"], BASE, BASE + 10, every_ms=10, agg="mean")
    assert store.query(["a"], ["on"], BASE, BASE + 10, every_ms=10, agg="count")["a"] == {
        "on": [(BASE, 2)]
    }


def test_marks_and_statuses(store):
    store.write(
        [
            point("a", BASE, t=1.0, seq=0, boot=2),
            point("a", BASE + 1, t=1.0, seq=3, boot=2, dropped=4),
            point("a", BASE + 2, t=1.0),
        ]
    )
    marks = sorted(store.marks("a", BASE, BASE + 10), key=lambda m: m.ts_ms)
    assert [(m.ts_ms, m.boot, m.seq, m.dropped) for m in marks] == [
        (BASE, 2, 0, None),
        (BASE + 1, 2, 3, 4),
        (BASE + 2, None, None, None),
    ]
    store.write_drops("a", 2, 5, BASE + 3)
    store.write_drops("a", 2, 9, BASE + 4)
    store.write_drops("b", 1, 1, BASE + 4)
    assert [(r.ts_ms, r.boot, r.dropped) for r in store.drop_reports("a", BASE, BASE + 10)] == [
        (BASE + 3, 2, 5),
        (BASE + 4, 2, 9),
    ]
    store.write_status("a", True, BASE)
    store.write_status("a", False, BASE + 5)
    status = store.statuses(["a", "b"])
    assert list(status) == ["a"] and (status["a"].online, status["a"].ts_ms) == (False, BASE + 5)


def test_status_and_marks_keep_to_their_bounds_and_order(store):
    """An older status arriving late does not replace a newer one; marks and drop
    reports are read in [start, stop) of the asked device only."""
    store.write_status("a", False, BASE + 5)
    store.write_status("a", True, BASE + 1)  # late: older than what is stored
    store.write_status("b", True, BASE + 2)
    got = {d: (s.online, s.ts_ms) for d, s in store.statuses(["a", "b", "c"]).items()}
    assert got == {"a": (False, BASE + 5), "b": (True, BASE + 2)}
    assert store.statuses([]) == {}
    store.write([point(d, BASE + i, t=1.0, seq=i) for d in "ab" for i in range(4)])
    assert [(m.ts_ms, m.seq) for m in store.marks("a", BASE + 1, BASE + 3)] == [
        (BASE + 1, 1),
        (BASE + 2, 2),
    ]
    store.write_drops("a", 1, 2, BASE)
    store.write_drops("a", 1, 3, BASE + 3)
    assert [(r.ts_ms, r.dropped) for r in store.drop_reports("a", BASE + 1, BASE + 3)] == []
    assert [(r.ts_ms, r.dropped) for r in store.drop_reports("a", BASE, BASE + 4)] == [
        (BASE, 2),
        (BASE + 3, 3),
    ]


def test_rejected_messages_are_counted_per_device_within_bounds(store):
    """Dead letters of a known device, for its status (issue 13: mistyped topics)."""
    for ts in (BASE + 1, BASE + 2, BASE + 9):
        store.write_rejected("a", ts)
    store.write_rejected("b", BASE + 2)
    assert store.rejected("a", BASE, BASE + 9) == 2
    assert store.rejected("a", BASE, BASE + 10) == 3
    assert store.rejected("c", BASE, BASE + 10) == 0


def test_influx_schema_creates_the_database_and_retention_policy(influx_url):
    database = f"fltest_{secrets.token_hex(6)}"
    store = InfluxStore(influx_url, database, retention="2w")
    try:
        store.ensure_schema()
        store.ensure_schema()  # idempotent
        policies = influx_select(influx_url, database, f'SHOW RETENTION POLICIES ON "{database}"')
        rows = {row[0]: row for row in policies[0]["values"]}
        assert rows["fieldline"][1] == "336h0m0s" and rows["fieldline"][-1] is True
        with pytest.raises(ValueError):
            InfluxStore(influx_url, database, retention="two weeks")
    finally:
        store.close()
        influx_statement(influx_url, f'DROP DATABASE "{database}"')


def test_a_mean_that_overflows_is_a_query_error(store):
    store.write([point("a", BASE, t=1.7e308), point("a", BASE + 1, t=1.7e308)])
    with pytest.raises(QueryError):
        store.query(["a"], ["t"], BASE, BASE + 10, every_ms=10, agg="mean")


def test_an_unreachable_influx_is_an_outage_not_a_crash():
    from fieldline_backend.infra.timeseries import TimeSeriesUnavailable

    store = InfluxStore("http://127.0.0.1:9", "x", timeout=1)
    with pytest.raises(TimeSeriesUnavailable):
        store.write([point("a", BASE, t=1.0)])


TAG = st.text(alphabet=st.sampled_from(list(" ,=\"\\'=\tab\n\u00e9")), min_size=1, max_size=10)
# Bounded so that a sum of 30 cannot overflow (each store then refuses the mean alike).
NUMBERS = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)


@settings(deadline=None)
@given(
    tag=TAG,
    rows=st.lists(st.tuples(st.integers(0, 5000), NUMBERS, st.booleans()), min_size=1, max_size=30),
    every=st.integers(1, 3000),
    agg=st.sampled_from(["min", "max", "last", "count", "mean"]),
)
def test_influx_and_sqlite_agree_on_random_points(
    influx_url, tmp_path_factory, tag, rows, every, agg
):
    database = f"fltest_{secrets.token_hex(6)}"
    influx = InfluxStore(influx_url, database)
    sqlite = SQLiteStore(tmp_path_factory.mktemp("series") / "s.db")
    try:
        influx.ensure_schema()
        sqlite.ensure_schema()
        by_ts = {ts: (value, flag) for ts, value, flag in rows}  # one reading per ts
        points = [
            Point("d", BASE + ts, {"x": value, "f": flag}, {"room": representable_tag(tag) or "r"})
            for ts, (value, flag) in by_ts.items()
        ]
        for adapter in (influx, sqlite):
            adapter.write(points)
        span = (BASE, BASE + 6000)
        raw = [adapter.query(["d"], ["x", "f"], *span) for adapter in (influx, sqlite)]
        assert raw[0] == raw[1]
        aggregated = [
            adapter.query(["d"], ["x"], *span, every, agg) for adapter in (influx, sqlite)
        ]
        left, right = aggregated[0]["d"]["x"], aggregated[1]["d"]["x"]
        assert [ts for ts, _ in left] == [ts for ts, _ in right]
        for (_, a), (_, b) in zip(left, right, strict=True):
            assert a == b or (agg == "mean" and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300))
        tags = influx_select(influx_url, database, 'SHOW TAG VALUES WITH KEY = "room"')
        assert [row[1] for row in tags[0]["values"]] == [representable_tag(tag) or "r"]
    finally:
        influx.close()
        sqlite.close()
        httpx.post(f"{influx_url}/query", data={"q": f'DROP DATABASE "{database}"'})


def test_latest_value_of_each_field_without_bookkeeping(store):
    now = int(time.time() * 1000)
    marks = Marks(received=now, seq=1, boot=1)
    store.write(
        [
            Point("dev-a", now - 9000, {"temperature": 20.5, "door": True}, {}, marks),
            Point("dev-a", now - 5000, {"temperature": 21.5}, {}, marks),
            Point("dev-a", now - 100_000, {"humidity": 40.0}, {}, marks),
            Point("dev-b", now - 1000, {"temperature": 99.0, "pressure": 1.0}, {}, marks),
        ]
    )
    assert store.latest("dev-a", now - 60_000) == {
        "door": (now - 9000, True),
        "temperature": (now - 5000, 21.5),
    }
    assert set(store.latest("dev-a", now - 200_000)) == {"door", "temperature", "humidity"}
    assert store.latest("dev-c", now - 200_000) == {}


def test_bulk_latest_and_marks_are_the_single_device_answers(store):
    """latest_by_device and marks_by_device (the fleet overview) answer, for every device
    asked, exactly what latest and marks answer for it alone; a device with nothing is {}
    or []; tag sets (metadata changed between readings) do not split a device."""
    now = int(time.time() * 1000)
    points = []
    for d, device in enumerate(["dev-a", "dev-b", "dev-c"]):
        for i in range(5):
            values = {f"v{(i + d) % 3}": float(i), "on": i % 2 == 0}
            marks = Marks(received=now - i, seq=i, boot=d + 1, dropped=i if i == 3 else None)
            points.append(Point(device, now - 1000 * i, values, {"room": f"r{i % 2}"}, marks))
    store.write(points)
    asked = ["dev-a", "dev-b", "dev-c", "dev-none"]
    for limit in (None, 1, 2):
        bulk = store.latest_by_device(asked, now - 60_000, limit=limit)
        assert bulk == {d: store.latest(d, now - 60_000, limit=limit) for d in asked}
    assert store.latest_by_device(asked, now - 60_000)["dev-a"] == {
        "on": (now, True), "v0": (now, 0.0), "v1": (now - 1000, 1.0), "v2": (now - 2000, 2.0),
    }  # fmt: skip
    bulk_marks = store.marks_by_device(asked, now - 3500, now + 1)
    assert bulk_marks == {d: store.marks(d, now - 3500, now + 1) for d in asked}
    assert [(m.ts_ms, m.seq, m.dropped) for m in bulk_marks["dev-b"]] == [
        (now - 3000, 3, 3), (now - 2000, 2, None), (now - 1000, 1, None), (now, 0, None),
    ]  # fmt: skip
    assert bulk_marks["dev-none"] == [] and store.marks_by_device([], 0, now) == {}


# ---- pages: a capped answer and the cursor to the rest (issue 13, item 7) -----------------


def page_through(store, devices, fields, start, stop, limit, **window):
    """Every page from start to stop: [(rows of the page, next_start), ...]."""
    pages = []
    while True:
        page = store.page(devices, fields, start, stop, limit, **window)
        rows = sorted(
            (ts, device, name, value)
            for device, by_field in page.series.items()
            for name, points in by_field.items()
            for ts, value in points
        )
        pages.append((rows, page.next_start))
        if page.next_start is None:
            return pages
        assert page.next_start > start, f"no progress: next_start {page.next_start} <= {start}"
        start = page.next_start


def test_a_page_holds_at_most_the_limit_and_the_cursor_reads_each_value_once(store):
    # 30,000 readings of two fields, and ms shared by devices and fields: every 7th ms
    # of device a is also a ms of device b, so cuts fall inside shared milliseconds.
    count = 30_000
    points = [point("a", BASE + i, t=float(i), on=i % 2 == 0) for i in range(count)]
    points += [point("b", BASE + i, t=-float(i)) for i in range(0, count, 7)]
    for i in range(0, len(points), 5000):
        store.write(points[i : i + 5000])
    expected = sorted(
        [(BASE + i, "a", "on", i % 2 == 0) for i in range(count)]
        + [(BASE + i, "a", "t", float(i)) for i in range(count)]
        + [(BASE + i, "b", "t", -float(i)) for i in range(0, count, 7)]
    )
    limit = 10_001  # odd: a page of whole ms of a (2 values each) cannot end exactly on it
    first = store.page(["a", "b"], ["t", "on"], BASE, BASE + count, limit)
    held = sum(len(p) for by_field in first.series.values() for p in by_field.values())
    assert limit - 3 <= held <= limit, f"a page of {held} values; expected just under {limit}"
    assert first.next_start is not None, "a cut answer must say where the rest starts"

    pages = page_through(store, ["a", "b"], ["t", "on"], BASE, BASE + count, limit)
    got = [row for rows, _ in pages for row in rows]
    assert len(got) == len(expected), f"paged {len(got)} values; stored {len(expected)}"
    assert got == expected, "pages must hold each value once, in (ts, device, field) order"
    assert all(len(rows) <= limit for rows, _ in pages)
    for rows, next_start in pages[:-1]:  # a page never splits a millisecond
        assert rows[-1][0] < next_start, (rows[-1], next_start)
    # Within a page the points of a field are in time order, as query() gives them.
    assert store.page(["a"], ["t"], BASE, BASE + 5, 100).series == {
        "a": {"t": [(BASE + i, float(i)) for i in range(5)]}
    }


def test_aggregated_pages_cut_between_windows(store):
    store.write([point("a", BASE + i * 100, t=float(i), u=1.0) for i in range(100)])
    pages = page_through(
        store, ["a"], ["t", "u"], BASE, BASE + 10_000, 9, every_ms=1000, agg="count"
    )
    assert [len(rows) for rows, _ in pages] == [8, 8, 4], "windows of 2 values, 9 per page"
    got = [row for rows, _ in pages for row in rows]
    assert got == sorted((BASE + w * 1000, "a", name, 10) for w in range(10) for name in ("t", "u"))


def test_a_millisecond_larger_than_the_limit_is_refused_not_split(store):
    store.write([point("a", BASE, t=1.0, u=2.0, v=3.0)])
    with pytest.raises(QueryError):
        store.page(["a"], ["t", "u", "v"], BASE, BASE + 1, 2)


def test_latest_is_bounded_to_the_first_fields_by_name(store):
    now = int(time.time() * 1000)
    store.write([Point("a", now - 1000, {f"f{i:02d}": float(i) for i in range(20)})])
    assert list(store.latest("a", now - 60_000, limit=5)) == [f"f{i:02d}" for i in range(5)]
