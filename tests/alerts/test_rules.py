"""Rule validation: the normal form of good rules, 422-worthy errors naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.alerts.rules import RuleInvalid, rule_to_json, validate_rule
from fieldline_backend.common.durations import format_duration, parse_duration

EXAMPLE = {
    "name": "too hot",
    "device_id": "dev-abcdefghijkl",
    "field": "temperature",
    "condition": "above",
    "warn": 25,
    "crit": 30,
    "clear": 28,
    "for": "5m",
    "recipients": ["ops@example.com", "webhook:https://hooks.example.com/x"],
    "repeat_every": "1h",
    "notify_on_recovery": True,
}


def test_the_issue_example_is_valid_and_round_trips():
    rule = validate_rule(EXAMPLE)
    assert rule["for_s"] == 300 and rule["repeat_every_s"] == 3600
    assert rule["warn"] == 25.0 and rule["crit"] == 30.0 and rule["clear"] == 28.0
    public = rule_to_json(rule)
    assert public["for"] == "5m" and public["repeat_every"] == "1h"
    assert validate_rule({k: v for k, v in public.items() if v is not None}) == rule


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), (90, 90), ("0s", 0), ("1.5s", 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "-1s", "", "1y", True, None, "1e9"])
def test_bad_durations_say_how_to_write_them(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_is_the_shortest_exact_unit():
    assert [format_duration(s) for s in (0, 90, 300, 3600, 86400, 0.5)] == [
        "0s",
        "90s",
        "5m",
        "1h",
        "1d",
        "500ms",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"condition": "sideways"}, "condition"),
        ({"warn": 35}, "warn"),  # warn above crit for 'above'
        ({"clear": 31}, "clear"),  # clear on the bad side of crit
        ({"for": "soon"}, "for"),
        ({"recipients": []}, "recipients"),
        ({"recipients": ["not an address"]}, "recipients"),
        ({"recipients": ["webhook:ftp://x"]}, "recipients"),
        ({"repeat_every": "0s"}, "repeat_every"),
        ({"field": "1abc"}, "field"),
        ({"selector": {"room": "lab"}}, "device_id"),  # both device_id and selector
        ({"crit": "hot"}, "crit"),
        ({"crit": float("nan")}, "crit"),
        ({"colour": "red"}, "colour"),
        ({"kind": "magic"}, "kind"),
        ({"notify_on_recovery": "yes"}, "notify_on_recovery"),
    ],
)
def test_invalid_rules_name_the_field_at_fault(change, field):
    with pytest.raises(RuleInvalid) as caught:
        validate_rule({**EXAMPLE, **change})
    assert caught.value.field == field


def test_ranges_need_pairs_in_order():
    rule = {**EXAMPLE, "condition": "outside", "warn": [10, 25], "crit": [5, 30], "clear": [7, 28]}
    assert validate_rule(rule)["crit"] == [5.0, 30.0]
    with pytest.raises(RuleInvalid) as caught:
        validate_rule({**rule, "warn": 20})
    assert caught.value.field == "warn"
    with pytest.raises(RuleInvalid) as caught:
        validate_rule({**rule, "warn": [2, 25]})  # warn range wider than crit range
    assert caught.value.field == "warn"


def test_deadman_and_external_rules_need_less():
    deadman = validate_rule(
        {
            "name": "offline",
            "kind": "deadman",
            "device_id": "d",
            "for": "10m",
            "recipients": ["a@b.c"],
        }
    )
    assert deadman["kind"] == "deadman" and deadman["for_s"] == 600 and deadman["field"] is None
    with pytest.raises(RuleInvalid) as caught:
        validate_rule({"name": "x", "kind": "deadman", "device_id": "d", "recipients": ["a@b.c"]})
    assert caught.value.field == "for"
    external = validate_rule({"name": "from influx", "kind": "external", "recipients": ["a@b.c"]})
    assert external["device_id"] is None and external["selector"] is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    st.dictionaries(
        st.sampled_from(sorted(EXAMPLE) + ["kind", "selector", "enabled", "other"]),
        json_values,
        max_size=6,
    )
)
def test_any_json_is_a_rule_or_a_named_refusal(changes):
    try:
        rule = validate_rule({**EXAMPLE, **changes})
    except RuleInvalid as error:
        assert error.field and error.message
    else:
        assert rule["recipients"] and rule["name"]
