"""The monitor's cycle over the embedded time-series store (SQLite adapter) and
recording neighbours: bulk queries, posts only on change, late digests, deadman first,
nothing lost when the alerts service is away, a restart that remembers what was told."""

from __future__ import annotations

import asyncio

import pytest

from fieldline_backend.alerts.rules import validate_rule
from fieldline_backend.infra.timeseries import Marks, Point
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore
from fieldline_backend.monitor.devices import WatchedDevice
from fieldline_backend.monitor.runner import Monitor


@pytest.fixture
def store(tmp_path):
    """The embedded adapter of the time-series port, as the monitor reads it in production."""
    adapter = SQLiteStore(tmp_path / "series.db")
    adapter.ensure_schema()
    yield adapter
    adapter.close()


def put(store: SQLiteStore, device: str, ts: int, **values) -> None:
    """One reading as storage writes it: arrived at its own ts."""
    store.write([Point(device, ts, values, {"owner": "1"}, Marks(received=ts))])


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(rules, devices, store, clock, posted, told=None, fail=None):
    async def fetch_rules():
        return rules

    async def fetch_devices(owner):
        return devices

    async def post(payloads):
        if fail and fail[0]:
            raise ConnectionError("alerts is away")
        posted.extend(payloads)

    async def fetch_told():
        return told

    return Monitor(
        store,
        fetch_rules,
        fetch_devices,
        post,
        interval_s=1.0,
        late_after_s=5.0,
        clock=clock,
        fetch_told=fetch_told if told is not None else None,
    )


def rule(rule_id: str, **spec) -> dict:
    base = {
        "name": rule_id,
        "field": "temperature",
        "condition": "above",
        "crit": 30,
        "recipients": ["a@b.c"],
    }
    return {
        **validate_rule({**base, **spec}),
        "id": rule_id,
        "owner_id": "1",
        "updated_ms": 0,
        "created_ms": 0,
    }


DEVICES = [
    WatchedDevice(f"d{i}", f"device {i}", {"room": "lab" if i < 3 else "hall"}) for i in range(5)
]


def levels(posted) -> list[tuple[str, str, str]]:
    return [(p["_check_id"], p["device_id"], p["_level"]) for p in posted]


def test_posts_only_changes_with_a_few_bulk_queries(store):
    clock, posted = Clock(), []
    rules = [
        rule("r1", selector={"room": "lab"}),
        rule("r2", device_id="d4"),
        rule("r3", device_id="d0"),
    ]
    monitor = make(rules, DEVICES, store, clock, posted)
    for d in DEVICES:
        put(store, d.id, int(clock.now * 1000) - 500, temperature=20.0)
    report = asyncio.run(monitor.cycle())
    assert report.queries == 1  # three rules, five devices, one field: one query
    assert sorted(levels(posted)) == sorted(
        [
            ("r1", "d0", "ok"),
            ("r1", "d1", "ok"),
            ("r1", "d2", "ok"),
            ("r2", "d4", "ok"),
            ("r3", "d0", "ok"),
        ]
    )
    posted.clear()
    clock.now += 1
    put(store, "d0", int(clock.now * 1000) - 100, temperature=31.0)
    asyncio.run(monitor.cycle())
    assert sorted(levels(posted)) == [("r1", "d0", "crit"), ("r3", "d0", "crit")]
    assert posted[0]["temperature"] == 31.0 and posted[0]["_fieldline"]["threshold"] == 30
    posted.clear()
    clock.now += 1
    asyncio.run(monitor.cycle())
    assert posted == []  # still crit: nothing new to say


def test_nothing_is_lost_while_alerts_is_away_and_a_restart_remembers(store):
    clock, posted, fail = Clock(), [], [True]
    rules = [rule("r1", device_id="d0")]
    monitor = make(rules, DEVICES, store, clock, posted, fail=fail)
    put(store, "d0", int(clock.now * 1000) - 100, temperature=35.0)
    assert asyncio.run(monitor.cycle()).errors
    fail[0] = False
    clock.now += 1
    asyncio.run(monitor.cycle())
    assert levels(posted) == [("r1", "d0", "crit")]
    # A new monitor that learns what alerts was told posts nothing for a standing crit...
    posted.clear()
    restarted = make(rules, DEVICES, store, clock, posted, told={("r1", "d0"): "crit"})
    asyncio.run(restarted.cycle())
    assert posted == []
    # ...and the recovery when it comes.
    clock.now += 1
    put(store, "d0", int(clock.now * 1000) - 100, temperature=20.0)
    asyncio.run(restarted.cycle())
    assert levels(posted) == [("r1", "d0", "ok")]


def test_backlog_gives_one_digest_and_no_fresh_alarm(store):
    clock, posted = Clock(), []
    monitor = make([rule("r1", device_id="d0")], DEVICES, store, clock, posted)
    now = int(clock.now * 1000)
    put(store, "d0", now - 100, temperature=20.0)
    asyncio.run(monitor.cycle())
    posted.clear()
    clock.now += 60  # the device was away a minute; it drains in two parts, then is current
    for index, ts in enumerate(range(now + 1000, now + 31000, 1000)):
        put(store, "d0", ts, temperature=40.0 if index % 3 == 0 else 20.0)
    asyncio.run(monitor.cycle())
    assert posted == []  # still draining? no: nothing more came; the digest goes next
    clock.now += 1
    put(store, "d0", int(clock.now * 1000) - 50, temperature=21.0)
    asyncio.run(monitor.cycle())
    [digest] = posted
    late = digest["_fieldline"]["late"]
    assert late["readings"] == 30 and late["breaches"] == 10 and late["worst_value"] == 40.0
    assert digest["_level"] == "info"


def test_deadman_is_posted_before_value_rules(store):
    clock, posted = Clock(), []
    rules = [
        rule("hot", device_id="d0", crit=10),
        rule("gone", kind="deadman", device_id="d1", **{"for": "5s"}),
    ]
    monitor = make(rules, DEVICES, store, clock, posted)
    put(store, "d0", int(clock.now * 1000) - 100, temperature=20.0)
    put(store, "d1", int(clock.now * 1000) - 10_000, temperature=20.0)
    asyncio.run(monitor.cycle())
    assert [(p["_check_id"], p["_level"]) for p in posted] == [("gone", "crit"), ("hot", "crit")]
