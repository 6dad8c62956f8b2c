"""Judged by event time: a backlog drained after an outage raises no fresh alarm but
one late-data digest per device and rule; value alerts are held while the device's
deadman alert stands."""

from __future__ import annotations

import time

import pytest

from fieldline_backend.alerts.payloads import Notification
from fieldline_backend.alerts.service import AlertService
from fieldline_backend.common.db import Database

LATE_AFTER = 4.0


@pytest.fixture
def late_stack(start_alert_stack):
    with start_alert_stack(monitor_late_after=LATE_AFTER) as stack:
        yield stack


def test_a_drained_backlog_gives_one_digest_not_fresh_alarms(late_stack):
    stack = late_stack
    client = stack.user()
    device = stack.device(client, "Weather mast")
    stack.rule(
        client,
        name="mast offline",
        kind="deadman",
        device_id=device["id"],
        recipients=["ops@example.com"],
        **{"for": "2s"},
    )
    stack.rule(
        client,
        name="mast hot",
        device_id=device["id"],
        field="temperature",
        condition="above",
        crit=30,
        recipients=["values@example.com"],
        **{"for": "0s"},
    )
    feeder = stack.feed(device["id"], 20.0)
    time.sleep(1.5)
    feeder.paused = True
    outage_began = int(time.time() * 1000)
    stack.wait_mails(1, to="ops@example.com")  # offline
    # The device comes back and drains what it buffered: taken during the outage, hot,
    # and older on arrival than late_after by a clear margin.
    backlog = [outage_began + 100 + index * 125 for index in range(8)]
    while time.time() * 1000 < backlog[-1] + LATE_AFTER * 1000 + 3000:
        time.sleep(0.1)
    for index, ts in enumerate(backlog):
        stack.write(device["id"], ts, temperature=35.0 + index)
    feeder.paused = False
    back = stack.wait_mails(2, to="ops@example.com")[-1]
    assert back.subject.startswith("[OK] Weather mast is sending again")
    [digest] = stack.wait_mails(1, to="values@example.com")
    assert digest.subject.startswith("[LATE CRIT] Weather mast: 8 of 8 delayed readings"), (
        digest.subject
    )
    assert "worst 42" in digest.subject and "Delayed readings" in digest.text
    stack.settle()
    values = [m.subject for m in stack.mails() if m.to == "values@example.com"]
    assert values == [digest.subject]  # no "[CRIT] ... 42 > 30" for an old breach
    kinds = sorted(a["kind"] for a in client.get("/api/v1/alerts").json())
    assert kinds == ["alert", "late", "recovery"]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+psycopg://")
    else:
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


def note(rule_id: str, level: str, device: str = "dev-aaaaaaaaaaaa") -> Notification:
    return Notification(
        rule_id=rule_id,
        check_name="c",
        level=level,
        message=level,
        time_ms=int(time.time() * 1000),
        device_key=device,
        device_id=device,
        field="temperature",
        value=33.0,
    )


def outbox_subjects(db) -> list[str]:
    from fieldline_backend.alerts.models import OutboxRow

    with db.session() as session:
        return [row.message["subject"] for row in session.query(OutboxRow).order_by(OutboxRow.id)]


def test_value_alerts_are_held_while_the_deadman_stands(database):
    service = AlertService(database, "http://fieldline.test")
    deadman = service.create_rule(
        "1",
        {
            "name": "gone",
            "kind": "deadman",
            "device_id": "dev-aaaaaaaaaaaa",
            "for": "1m",
            "recipients": ["ops@example.com"],
        },
    )
    hot = service.create_rule(
        "1",
        {
            "name": "hot",
            "device_id": "dev-aaaaaaaaaaaa",
            "field": "temperature",
            "condition": "above",
            "crit": 30,
            "recipients": ["ops@example.com"],
        },
    )
    assert service.receive([note(deadman["id"], "crit")])[0]["sent"] == "alert"
    held = service.receive([note(hot["id"], "crit")])[0]
    assert held.get("held") is True
    assert len(outbox_subjects(database)) == 1  # only the offline alert
    # Back online: the deadman recovers and the value alert that was held is told now.
    assert service.receive([note(deadman["id"], "ok")])[0]["sent"] == "recovery"
    subjects = outbox_subjects(database)
    assert len(subjects) == 3 and subjects[2].startswith(
        "[CRIT] dev-aaaaaaaaaaaa: temperature 33 > 30"
    )
    # Another device of the same owner is not held by this deadman.
    other = service.receive([note(hot["id"], "crit", device="dev-bbbbbbbbbbbb")])[0]
    assert other["sent"] == "alert"
    # The same level again (a restarted monitor posting what stands) tells nobody.
    again = service.receive([note(hot["id"], "crit", device="dev-bbbbbbbbbbbb")])[0]
    assert again["sent"] is None
    assert {
        "rule_id": hot["id"],
        "device": "dev-bbbbbbbbbbbb",
        "level": "crit",
    } in service.standing()
