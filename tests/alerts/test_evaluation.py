"""Event-time evaluation: levels with hysteresis, `for` measured between readings,
late-data digests, deadman, the preview's replay. Pure logic, no services."""

from __future__ import annotations

from fieldline_backend.alerts.decisions import decide, simulate
from fieldline_backend.alerts.rules import validate_rule
from fieldline_backend.monitor.evaluation import (
    SeriesState,
    deadman_level,
    digest_backlog,
    replay,
)
from fieldline_backend.monitor.levels import next_level
from fieldline_backend.monitor.preview import deadman_changes


def rule(**change) -> dict:
    base = {
        "name": "too hot",
        "device_id": "dev-x",
        "field": "temperature",
        "condition": "above",
        "crit": 30,
        "for": "0s",
        "recipients": ["ops@example.com"],
    }
    return validate_rule({**base, **change})


def levels(r: dict, values) -> list[str]:
    state, out = SeriesState(), []
    for index, value in enumerate(values):
        state.feed(r, index * 1000, value)
        out.append(state.reported(r))
    return out


def test_crit_fires_on_the_first_breach_with_for_zero():
    assert levels(rule(), [20, 31, 29]) == ["ok", "crit", "ok"]


def test_for_counts_event_time_between_readings():
    r = rule(**{"for": "2s"})
    # readings 1 s apart: breach at t=1, 2, 3 -> held 2 s at t=3
    assert levels(r, [20, 31, 32, 33, 20]) == ["ok", "ok", "ok", "crit", "ok"]


def test_hysteresis_holds_the_level_until_clear():
    r = rule(clear=28)
    assert levels(r, [31, 29.5, 30.5, 29, 28.5, 27.9, 29.9]) == [
        "crit",
        "crit",
        "crit",
        "crit",
        "crit",
        "ok",
        "ok",
    ]


def test_warn_and_crit_share_the_hysteresis_margin():
    r = rule(warn=25, crit=30, clear=28)  # margin 2: leave warn below 23
    assert next_level(r, 27, "crit") == "warn"
    assert next_level(r, 24, "warn") == "warn"
    assert next_level(r, 22.9, "warn") == "ok"
    assert next_level(r, 24, "ok") == "ok"
    assert next_level(r, 31, "ok") == "crit"


def test_ranges_with_hysteresis():
    r = rule(condition="outside", crit=[10, 30], clear=[12, 28])
    assert levels(r, [20, 9, 11, 12.5, 31, 29, 27]) == [
        "ok",
        "crit",
        "crit",
        "ok",
        "crit",
        "crit",
        "ok",
    ]
    inside = rule(condition="inside", crit=[10, 20])
    assert levels(inside, [5, 15, 25]) == ["ok", "crit", "ok"]


def test_below():
    assert levels(rule(condition="below", warn=5, crit=0), [10, 4, -1, 3, 6]) == [
        "ok",
        "warn",
        "crit",
        "warn",
        "ok",
    ]


def test_booleans_compare_as_numbers():
    assert levels(rule(crit=0.5), [False, True, False]) == ["ok", "crit", "ok"]


def test_late_backlog_digest_counts_breaches_and_would_be_alerts():
    r = rule(**{"for": "1s"})
    backlog = [(0, 20.0), (1000, 31.0), (2000, 35.0), (3000, 20.0), (4000, 31.0), (5000, 32.0)]
    digest = digest_backlog(r, backlog)
    assert digest.readings == 6 and digest.breaches == 4
    assert digest.worst_value == 35.0 and digest.worst_ts == 2000
    assert digest.would_have_fired == 2
    assert digest_backlog(r, [(0, 1.0), (1000, 2.0)]).breaches == 0


def test_deadman_counts_from_last_reading_or_rule_start():
    r = validate_rule(
        {"name": "o", "kind": "deadman", "device_id": "d", "for": "10s", "recipients": ["a@b.c"]}
    )
    assert deadman_level(r, 1_000, 0, 10_999) == "ok"
    assert deadman_level(r, 1_000, 0, 11_000) == "crit"
    assert deadman_level(r, None, 5_000, 14_000) == "ok"
    assert deadman_level(r, None, 5_000, 15_000) == "crit"


def test_decisions_on_change_repeat_and_recovery():
    r = rule(repeat_every="10s")
    assert decide(r, "ok", None, "crit", 0).kind == "alert"
    assert decide(r, "crit", 0, "crit", 9_999).kind is None
    assert decide(r, "crit", 0, "crit", 10_000).kind == "repeat"
    assert decide(r, "crit", 0, "warn", 1).kind == "alert"
    assert decide(r, "crit", 0, "ok", 1).kind == "recovery"
    quiet = rule(notify_on_recovery=False)
    recovered = decide(quiet, "crit", 0, "ok", 1)
    assert recovered.kind is None and recovered.notified_level == "ok"


def test_preview_replay_and_simulation():
    r = rule(clear=28, repeat_every="5s")
    readings = [(i * 1000, v) for i, v in enumerate([20, 31, 31, 31, 31, 31, 31, 27, 20])]
    changes = replay(r, readings)
    assert [(ts, level) for ts, level, _ in changes] == [(1000, "crit"), (7000, "ok")]
    sent = simulate(r, changes, end_ms=9000)
    assert [item["kind"] for item in sent] == ["alert", "repeat", "recovery"]
    assert sent[1]["ts"] == 6000


def test_deadman_preview_finds_gaps():
    r = validate_rule(
        {"name": "o", "kind": "deadman", "device_id": "d", "for": "10s", "recipients": ["a@b.c"]}
    )
    changes = deadman_changes(r, [0, 5_000, 30_000, 35_000], 0, 60_000)
    assert changes == [(15_000, "crit", None), (30_000, "ok", None), (45_000, "crit", None)]


def test_indexed_selection_matches_the_plain_one():
    from fieldline_backend.monitor.devices import OwnedDevices, WatchedDevice, select_devices

    owned = [
        WatchedDevice("d1", "a", {"room": "lab", "floor": 1, "on": True}),
        WatchedDevice("d2", "b", {"room": "lab", "floor": 2}),
        WatchedDevice("d3", "c", {"room": "hall", "floor": 1}),
    ]
    index = OwnedDevices(owned)
    for selector in ({"room": "lab"}, {"room": "lab", "floor": "1"}, {"on": "true"}, {"x": "y"}):
        found = index.select({"selector": selector})
        assert found == select_devices({"selector": selector}, owned), selector
    assert [d.id for d in index.select({"device_id": "d3"})] == ["d3"]
    assert index.select({"device_id": "someone-elses"}) == []
