"""Done-when cases 1-4 of issue 4, end to end through the public API, the monitor, the
alerts service and a real mail server (or the maildir), on both stacks."""

from __future__ import annotations

import re
import time

RECIPIENTS = ["ops@example.com", "oncall@example.com"]


def hot_rule(stack, client, device, **change) -> dict:
    body = {
        "name": "too hot",
        "device_id": device["id"],
        "field": "temperature",
        "condition": "above",
        "crit": 30,
        "for": "2s",
        "recipients": RECIPIENTS,
        **change,
    }
    return stack.rule(client, **body)


def history(client, **params) -> list[dict]:
    answer = client.get("/api/v1/alerts", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_breach_held_for_the_duration_mails_each_recipient_once(alert_stack):
    """Case 1 (and the webhook channel)."""
    client = alert_stack.user()
    device = alert_stack.device(client, "Greenhouse 3", {"room": "north"})
    hot_rule(
        alert_stack, client, device, recipients=[*RECIPIENTS, f"webhook:{alert_stack.webhook.url}"]
    )
    feeder = alert_stack.feed(device["id"], 25.0)
    time.sleep(1.5)
    assert alert_stack.mails() == []
    started = time.monotonic()
    feeder.value = 31.5
    mails = alert_stack.wait_mails(2)
    # Not before the breach has held for `for` (2 s) by the readings' own times.
    assert time.monotonic() - started >= 1.9
    alert_stack.settle()
    mails = alert_stack.mails()
    assert sorted(m.to for m in mails) == sorted(RECIPIENTS), [m.subject for m in mails]
    subject = mails[0].subject
    assert subject.startswith("[CRIT] Greenhouse 3: temperature 31.5 > 30"), subject
    assert "room=north" in mails[0].text
    # The links a person follows: the console's device and rule pages, not the JSON API.
    text = mails[0].text
    assert re.search(rf"^Device: +http://\S+/devices/{device['id']}\s*$", text, re.MULTILINE), text
    assert re.search(r"^Rule: +http://\S+/rules/[^/\s]+/edit\s*$", text, re.MULTILINE), text
    assert "/api/v1/" not in text
    assert "Greenhouse 3" in mails[0].html
    assert mails[0].message_id != mails[1].message_id
    assert mails[0].sender == "Fieldline <alerts@fieldline.test>"
    [hook] = alert_stack.webhook.bodies
    assert hook["alert"]["level"] == "crit" and hook["alert"]["device_id"] == device["id"]
    assert hook["link"].endswith(f"/devices/{device['id']}") and "/api/" not in hook["link"]
    assert hook["links"]["api"].endswith(f"/api/v1/devices/{device['id']}")
    [alert] = history(client)
    assert alert["kind"] == "alert" and alert["value"] == 31.5
    assert {d["status"] for d in alert["deliveries"]} == {"sent"}


def test_a_continuing_breach_repeats_only_per_repeat_every(alert_stack):
    """Case 2."""
    client = alert_stack.user()
    device = alert_stack.device(client, "Freezer")
    rule = hot_rule(
        alert_stack,
        client,
        device,
        recipients=["ops@example.com"],
        repeat_every="3s",
        **{"for": "0s"},
    )
    alert_stack.feed(device["id"], 35.0)
    alert_stack.wait_mails(1)
    alert_stack.wait_mails(2, timeout=30)
    # Deleting the rule ends the repeats; what was decided still goes out.
    assert client.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
    alert_stack.settle(cycles=2)
    # Two mails at most so far: the repeat comes once per 3 s, not once per cycle.
    sent = sorted(history(client), key=lambda a: a["created_at"])
    assert [a["kind"] for a in sent[:2]] == ["alert", "repeat"]
    gaps = [b["created_at"] - a["created_at"] for a, b in zip(sent, sent[1:], strict=False)]
    assert all(gap >= 3000 for gap in gaps), gaps
    assert len(alert_stack.mails()) == len(sent)
    assert alert_stack.mails()[1].subject.startswith("[CRIT, still] Freezer")


def test_recovery_when_asked_and_no_flapping_within_the_hysteresis(alert_stack):
    """Case 3."""
    client = alert_stack.user()
    device = alert_stack.device(client, "Boiler")
    loud = hot_rule(
        alert_stack,
        client,
        device,
        name="loud",
        recipients=["loud@example.com"],
        clear=28,
        notify_on_recovery=True,
        **{"for": "0s"},
    )
    hot_rule(
        alert_stack,
        client,
        device,
        name="quiet",
        recipients=["quiet@example.com"],
        clear=28,
        notify_on_recovery=False,
        **{"for": "0s"},
    )
    feeder = alert_stack.feed(device["id"], 31.0)
    alert_stack.wait_mails(1, to="loud@example.com")
    alert_stack.wait_mails(1, to="quiet@example.com")
    for value in (29.5, 30.5, 29.0, 30.8, 28.5, 31.0, 29.9):  # hovering inside 28..30+
        feeder.value = value
        time.sleep(0.6)
    alert_stack.settle(cycles=2)
    assert len(alert_stack.mails()) == 2, [m.subject for m in alert_stack.mails()]
    feeder.value = 27.0  # below clear
    [*_, recovery] = alert_stack.wait_mails(2, to="loud@example.com")
    assert recovery.subject.startswith("[OK] Boiler: temperature 27 <= 28"), recovery.subject
    alert_stack.settle()
    assert [m.to for m in alert_stack.mails()].count("quiet@example.com") == 1
    assert [m.to for m in alert_stack.mails()].count("loud@example.com") == 2
    loud_history = history(client, rule_id=loud["id"])
    assert sorted(a["kind"] for a in loud_history) == ["alert", "recovery"]
    # The history filters: by level, by time (event time, epoch ms or RFC 3339).
    assert [a["kind"] for a in history(client, rule_id=loud["id"], level="ok")] == ["recovery"]
    assert len(history(client, level=["crit", "ok"])) == 3
    recovered_at = next(a["time"] for a in loud_history if a["kind"] == "recovery")
    assert [a["kind"] for a in history(client, rule_id=loud["id"], since=recovered_at)] == [
        "recovery"
    ]
    assert [a["kind"] for a in history(client, rule_id=loud["id"], until=recovered_at)] == ["alert"]
    assert history(client, since="2999-01-01T00:00:00Z") == []
    assert client.get("/api/v1/alerts", params={"level": "bad"}).status_code == 422
    assert client.get("/api/v1/alerts", params={"since": "soon"}).status_code == 422


def test_deadman_offline_alert_and_recovery(alert_stack):
    """Case 4: one offline alert within the duration plus one interval, a recovery on return.
    Value alerts of the offline device are held while the deadman stands."""
    client = alert_stack.user()
    device = alert_stack.device(client, "Beehive")
    stack = alert_stack
    feeder = stack.feed(device["id"], 20.0)
    stack.rule(
        client,
        name="beehive offline",
        kind="deadman",
        device_id=device["id"],
        recipients=["ops@example.com"],
        **{"for": "2s"},
    )
    time.sleep(2.0)
    assert stack.mails() == []
    feeder.paused = True
    last_reading = time.monotonic()
    [offline] = stack.wait_mails(1, timeout=30)
    assert offline.subject.startswith("[CRIT] Beehive offline: nothing for 2s"), offline.subject
    took = time.monotonic() - last_reading
    stack.settle()
    assert len(stack.mails()) == 1
    feeder.paused = False
    [_, back] = stack.wait_mails(2)
    assert back.subject.startswith("[OK] Beehive is sending again"), back.subject
    kinds = sorted(a["kind"] for a in history(client))
    assert kinds == ["alert", "recovery"]
    # Recorded for the report; the bound is measured by bench/alerts.py, not asserted.
    print(f"offline alert {took:.2f} s after the last reading (for 2 s, interval 0.5 s)")
