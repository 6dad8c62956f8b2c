"""A rule is validated once, by alerts: the gateway's create and preview, and the
monitor's preview, pass alerts' own 422 through, word for word."""

from __future__ import annotations

import pytest

from fieldline_backend.alerts.rules import RuleInvalid, validate_rule

BASE = {
    "name": "hot",
    "field": "temperature",
    "condition": "above",
    "crit": 30,
    "for": "1m",
    "recipients": ["ops@example.com"],
    "selector": {"room": "attic"},
}
INVALID = [
    {**BASE, "condition": "sideways"},
    {**BASE, "crit": "thirty"},
    {**BASE, "warn": 40},  # warn beyond crit
    {**BASE, "for": "-1s"},
    {**BASE, "kind": "deadman", "for": "0s"},
    {**BASE, "colour": "red"},
    [1, 2],
]


@pytest.mark.parametrize("rule", INVALID, ids=range(len(INVALID)))
def test_the_gateway_and_the_monitor_pass_alerts_422_through(alert_stack, rule):
    with pytest.raises(RuleInvalid):
        validate_rule(rule)  # each case is one alerts refuses
    client = alert_stack.user()
    with alert_stack.running.internal_client() as internal:
        owner = internal.post("/internal/alert-rules/validate", json={"rule": rule})
        created_direct = internal.post("/internal/alert-rules", params={"owner_id": "x"}, json=rule)
        monitor = internal.post(
            "/internal/monitor/preview",
            json={"owner_id": "x", "rule": rule, "start_ms": 0, "stop_ms": 3_600_000},
        )
    assert owner.status_code == 422, owner.text
    detail = owner.json()["detail"]
    assert detail[0]["loc"][:2] == ["body", "rule"]

    preview = client.post("/api/v1/alert-rules/preview", json={"rule": rule, "period": "1h"})
    assert (preview.status_code, preview.json()) == (422, owner.json())
    assert (monitor.status_code, monitor.json()) == (422, owner.json())

    # Create names the field from the body's top: the same fault, one level up.
    created = client.post("/api/v1/alert-rules", json=rule)
    assert created.status_code == 422, created.text
    assert created.json() == created_direct.json()
    [fault] = created.json()["detail"]
    assert fault["loc"] == ["body", *detail[0]["loc"][2:]]
    assert fault["msg"] == detail[0]["msg"]


def test_a_valid_rule_comes_back_in_its_normal_form(alert_stack):
    with alert_stack.running.internal_client() as internal:
        answer = internal.post("/internal/alert-rules/validate", json={"rule": BASE})
        refused = internal.post("/internal/alert-rules/validate", json={"not": "a rule"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == validate_rule(BASE)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rule"]
