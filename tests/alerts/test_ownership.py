"""Case 7: user B neither sees nor changes user A's rules or alerts, and no rule of B's
can select A's devices. Also: 422 naming the field, preview and test-send."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_users_are_kept_apart(alert_stack):
    stack = alert_stack
    alice, bob = stack.user(), stack.user()
    hers = stack.device(alice, "Alice's lab", {"room": "lab"})
    rule = stack.rule(
        alice,
        name="hot",
        device_id=hers["id"],
        field="temperature",
        condition="above",
        crit=30,
        recipients=["alice@example.com"],
    )
    stack.feed(hers["id"], 35.0)
    stack.wait_mails(1, to="alice@example.com")

    assert bob.get("/api/v1/alert-rules").json() == []
    for method, path in [
        ("GET", f"/api/v1/alert-rules/{rule['id']}"),
        ("PATCH", f"/api/v1/alert-rules/{rule['id']}"),
        ("DELETE", f"/api/v1/alert-rules/{rule['id']}"),
        ("POST", f"/api/v1/alert-rules/{rule['id']}/test"),
    ]:
        answer = bob.request(method, path, json={"crit": 99} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path, answer.text)
    assert bob.get("/api/v1/alerts").json() == []
    assert bob.get("/api/v1/alerts", params={"device_id": hers["id"]}).json() == []
    assert len(alice.get("/api/v1/alerts").json()) == 1
    assert alice.get(f"/api/v1/alert-rules/{rule['id']}").json()["crit"] == 30

    # Bob names Alice's device: refused, naming the field.
    taken = bob.post(
        "/api/v1/alert-rules",
        json={
            "name": "steal",
            "device_id": hers["id"],
            "field": "temperature",
            "condition": "above",
            "crit": 1,
            "recipients": ["bob@example.com"],
        },
    )
    assert taken.status_code == 422 and taken.json()["detail"][0]["loc"] == ["body", "device_id"]
    # Bob's selector matches Alice's device's tags, yet selects only Bob's devices: none.
    stack.rule(
        bob,
        name="lab",
        selector={"room": "lab"},
        field="temperature",
        condition="above",
        crit=1,
        recipients=["bob@example.com"],
    )
    preview = bob.post(
        "/api/v1/alert-rules/preview",
        json={
            "rule": {
                "name": "lab",
                "selector": {"room": "lab"},
                "field": "temperature",
                "condition": "above",
                "crit": 1,
                "recipients": ["bob@example.com"],
            },
            "period": "1h",
        },
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["devices"] == 0
    stack.settle()
    assert [m.to for m in stack.mails()] == ["alice@example.com"]


def test_rule_crud_preview_and_test_send(alert_stack):
    stack = alert_stack
    client = stack.user()
    device = stack.device(client, "Attic", {"floor": 3})
    # An hour of history: two separate breaches above 30, one of them brief.
    now = int(time.time() * 1000)
    start = now - 3600_000
    values = [20.0] * 60
    values[10:20] = [32.0] * 10  # 10 minutes
    values[40:41] = [33.0]  # one minute
    for minute, value in enumerate(values):
        stack.write(device["id"], start + minute * 60_000, temperature=value)
    rule = {
        "name": "attic hot",
        "selector": {"floor": 3},
        "field": "temperature",
        "condition": "above",
        "crit": 30,
        "for": "5m",
        "recipients": ["a@example.com", "b@example.com"],
        "notify_on_recovery": True,
    }
    preview = client.post("/api/v1/alert-rules/preview", json={"rule": rule, "period": "2h"})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["devices"] == 1
    assert [(e["kind"], e["level"]) for e in body["timeline"]] == [
        ("alert", "crit"),
        ("recovery", "ok"),
    ]
    assert body["notifications"] == 4  # two events, two recipients each
    quick = client.post(
        "/api/v1/alert-rules/preview", json={"rule": {**rule, "for": "0s"}, "period": "2h"}
    )
    assert quick.json()["events"] == 4

    created = stack.rule(client, **rule)
    assert created["for"] == "5m" and created["selector"] == {"floor": "3"}
    changed = client.patch(f"/api/v1/alert-rules/{created['id']}", json={"crit": 31, "for": 60})
    assert changed.status_code == 200, changed.text
    assert changed.json()["crit"] == 31 and changed.json()["for"] == "1m"
    bad_patch = client.patch(f"/api/v1/alert-rules/{created['id']}", json={"clear": 40})
    assert bad_patch.status_code == 422 and bad_patch.json()["detail"][0]["loc"] == [
        "body",
        "clear",
    ]
    test = client.post(f"/api/v1/alert-rules/{created['id']}/test")
    assert test.status_code == 202, test.text
    mails = stack.wait_mails(2)
    assert {m.to for m in mails} == {"a@example.com", "b@example.com"}
    assert all(m.subject.startswith("[TEST] attic hot") for m in mails)
    listed = client.get("/api/v1/alert-rules").json()
    assert [r["id"] for r in listed] == [created["id"]]
    assert client.delete(f"/api/v1/alert-rules/{created['id']}").status_code == 204
    assert client.get(f"/api/v1/alert-rules/{created['id']}").status_code == 404
    assert client.get("/api/v1/alert-rules").json() == []


rule_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=5), st.integers()),
        "condition": st.sampled_from(["above", "below", "outside", "inside", "x"]),
        "crit": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=32),
            st.lists(st.integers(-50, 50), min_size=2, max_size=2),
            st.text(max_size=3),
        ),
        "warn": st.one_of(st.integers(-50, 50), st.none()),
        "clear": st.one_of(st.integers(-50, 50), st.none()),
        "for": st.one_of(st.sampled_from(["0s", "5m", "2h", "bad", "-1s"]), st.integers(-5, 100)),
        "repeat_every": st.one_of(st.none(), st.sampled_from(["1h", "0s", "never", "x"])),
        "recipients": st.one_of(
            st.just(["ops@example.com"]), st.lists(st.text(max_size=8), max_size=2)
        ),
        "kind": st.sampled_from(["threshold", "deadman", "external", "other"]),
        "selector": st.dictionaries(
            st.sampled_from(["room", "1bad"]), st.text(max_size=4), max_size=2
        ),
    },
)


def test_generated_rules_get_201_or_a_422_naming_a_field_never_500(alert_stack):
    stack = alert_stack
    client = stack.user()

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(rule_fields)
    def check(body):
        answer = client.post("/api/v1/alert-rules", json={"field": "temperature", **body})
        assert answer.status_code in (201, 422), (body, answer.status_code, answer.text)
        if answer.status_code == 422:
            detail = answer.json()["detail"]
            assert isinstance(detail, list) and detail[0]["loc"][0] == "body"

    check()
