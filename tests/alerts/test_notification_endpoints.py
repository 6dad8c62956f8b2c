"""Case 6: the documented InfluxDB 2 and Kapacitor payloads, posted to the public
endpoints, produce the mails they describe; malformed -> 422, wrong secret -> 401."""

from __future__ import annotations

import base64

import httpx

from tests.alerts.doc_payloads import (
    INFLUXDB2_CRIT,
    INFLUXDB2_OK,
    KAPACITOR_CRITICAL,
    KAPACITOR_OK,
)


def receiver(stack, client, name: str, to: str) -> dict:
    return stack.rule(client, name=name, kind="external", recipients=[to], notify_on_recovery=True)


def post(stack, endpoint: str, body, secret: str | None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    with stack.running.client() as anonymous:
        return anonymous.post(
            f"/api/v1/notifications/{endpoint}", json=body, headers=headers, params=params
        )


def test_documented_payloads_produce_the_mails_they_describe(alert_stack):
    stack = alert_stack
    client = stack.user()
    settings = stack.settings
    kapacitor_rule = receiver(stack, client, "kapacitor cpu", "kapacitor@example.com")
    influx_rule = receiver(stack, client, "influx cpu", "influx@example.com")

    answer = post(
        stack,
        "kapacitor",
        KAPACITOR_CRITICAL,
        settings.notify_kapacitor_secret,
        rule_id=kapacitor_rule["id"],
    )
    assert answer.status_code == 200, answer.text
    [mail] = stack.wait_mails(1, to="kapacitor@example.com")
    assert mail.subject.startswith("[CRIT] Regans-MacBook-Pro-2.local: cpu:nil is CRITICAL")
    assert "usage_idle" in mail.text and "69.9" in mail.text
    # The OK alert is about another series (cpu1) that never fired: nothing to recover.
    answer = post(
        stack,
        "kapacitor",
        KAPACITOR_OK,
        settings.notify_kapacitor_secret,
        rule_id=kapacitor_rule["id"],
    )
    assert answer.status_code == 200, answer.text

    # InfluxDB 2 with basic auth (the endpoint's other auth method), routed by ?rule_id.
    basic = base64.b64encode(f"influx:{settings.notify_influxdb_secret}".encode()).decode()
    with stack.running.client() as anonymous:
        answer = anonymous.post(
            "/api/v1/notifications/influxdb",
            json=INFLUXDB2_CRIT,
            headers={"Authorization": f"Basic {basic}"},
            params={"rule_id": influx_rule["id"]},
        )
    assert answer.status_code == 200, answer.text
    [crit] = stack.wait_mails(1, to="influx@example.com")
    assert crit.subject.startswith(
        "[CRIT] cpu=cpu0,host=Regans-MacBook-Pro-2.local: usage_idle 69.9"
    )
    answer = post(
        stack, "influxdb", INFLUXDB2_OK, settings.notify_influxdb_secret, rule_id=influx_rule["id"]
    )
    assert answer.status_code == 200, answer.text
    [_, recovery] = stack.wait_mails(2, to="influx@example.com")
    assert recovery.subject.startswith("[OK]")
    stack.settle(cycles=2)
    assert len(stack.mails()) == 3, [m.subject for m in stack.mails()]


def test_malformed_is_422_and_a_wrong_secret_401(alert_stack):
    stack = alert_stack
    client = stack.user()
    rule = receiver(stack, client, "r", "x@example.com")
    secret = stack.settings.notify_influxdb_secret
    assert post(stack, "influxdb", INFLUXDB2_CRIT, None, rule_id=rule["id"]).status_code == 401
    wrong = post(stack, "influxdb", INFLUXDB2_CRIT, "wrong", rule_id=rule["id"])
    assert wrong.status_code == 401 and "secret" in wrong.json()["detail"]
    # Each endpoint has its own secret.
    crossed = post(stack, "kapacitor", KAPACITOR_CRITICAL, secret, rule_id=rule["id"])
    assert crossed.status_code == 401
    bad = post(stack, "influxdb", {**INFLUXDB2_CRIT, "_level": "panic"}, secret, rule_id=rule["id"])
    assert bad.status_code == 422 and "_level" in bad.json()["detail"]
    with stack.running.client() as anonymous:
        not_json = anonymous.post(
            "/api/v1/notifications/influxdb",
            content=b"{not json",
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert not_json.status_code == 422
    unknown_rule = post(stack, "influxdb", INFLUXDB2_CRIT, secret)  # _check_id is no rule
    assert unknown_rule.status_code == 422 and "rule" in unknown_rule.json()["detail"]
    kapacitor_secret = stack.settings.notify_kapacitor_secret
    no_rule = post(stack, "kapacitor", KAPACITOR_CRITICAL, kapacitor_secret)
    assert no_rule.status_code == 422
    stack.settle(cycles=1)
    assert stack.mails() == []
