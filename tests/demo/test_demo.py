"""`fieldline demo --speed 60 --duration 90` in a fresh data dir: readings of every
virtual device readable through the API, the threshold and the offline alert mailed to
the maildir, the silent device's buffered readings all delivered, exit 0 on Ctrl-C
within 5 s. Then a second run on the same data dir: same user, same devices, earlier
readings still there, and --duration ends it by itself."""

from __future__ import annotations

import sqlite3
import time

from tests.demo.process import FIELDLINE, DemoProcess, api, mail_subjects, wait_until
from tests.support.servers import free_port

DEVICES = 5


def readings_per_device(client, device_ids, start_ms, stop="now") -> dict[str, int]:
    counts = {}
    for device_id in device_ids:
        answer = client.get(
            f"/devices/{device_id}/telemetry",
            params={"fields": "temperature", "start": str(start_ms), "stop": str(stop)},
        )
        assert answer.status_code == 200, answer.text
        counts[device_id] = len(answer.json()["fields"]["temperature"])
    return counts


def offline_mails(subjects: list[str]) -> list[str]:
    return [s for s in subjects if s.startswith("[CRIT]") and " offline: " in s]


def test_demo_mails_both_alerts_stops_on_ctrl_c_and_continues_on_the_next_run(tmp_path):
    data = tmp_path / "data"
    http_port, mqtt_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    options = ["--data-dir", str(data), "--http-port", str(http_port)]
    options += ["--mqtt-port", str(mqtt_port)]
    first_ms = int(time.time() * 1000)

    demo = DemoProcess([*FIELDLINE, "demo", *options, "--speed", "60", "--duration", "90"])
    try:
        guide = demo.wait_for_guide(60)
        assert str(data) in guide and (data / "logs" / "fieldline.log").exists(), guide
        token = demo.token()
        with api(base, token) as client:
            devices = client.get("/devices").json()
            assert len(devices) == DEVICES, devices
            ids = sorted(device["id"] for device in devices)
            names = {device["id"]: device["name"] for device in devices}

            wait_until(
                lambda: (all(readings_per_device(client, ids, first_ms).values()), None),
                30,
                "a reading of every device",
            )

            def both_alerts():
                subjects = mail_subjects(data)
                threshold = any(s.startswith("[CRIT] Greenhouse: temperature") for s in subjects)
                offline = any(s.startswith("[CRIT] Beehive offline") for s in subjects)
                back = any(s.startswith("[OK] Beehive is sending again") for s in subjects)
                return threshold and offline and back, subjects

            subjects = wait_until(both_alerts, 75, "threshold, offline and recovery mails")
            beehive = next(i for i in ids if names[i] == "Beehive")

            def beehive_complete():
                status = client.get(f"/devices/{beehive}/status").json()
                return status["completeness"]["last_hour"]["missing"] == 0, status

            # Its journal kept what it read while away: no gap in its seq numbers.
            wait_until(beehive_complete, 15, "the Beehive's buffered readings")
            before_second = readings_per_device(client, ids, first_ms)
        code, seconds = demo.interrupt()
        assert code == 0, demo.output
        assert seconds < 5, f"took {seconds:.1f} s to stop after SIGINT"
    finally:
        demo.kill()
    assert len(offline_mails(subjects)) == 1, subjects

    second_ms = int(time.time() * 1000)
    again = DemoProcess([*FIELDLINE, "demo", *options, "--speed", "60", "--duration", "20"])
    try:
        again.wait_for_guide(60)
        with api(base, again.token()) as client:
            assert client.get("/me").json()["username"] == "demo"
            devices = client.get("/devices").json()
            assert sorted(device["id"] for device in devices) == ids, devices
            earlier = readings_per_device(client, ids, first_ms, stop=second_ms)
            assert all(earlier[i] >= before_second[i] for i in ids), (earlier, before_second)
            wait_until(
                lambda: (all(readings_per_device(client, ids, second_ms).values()), None),
                20,
                "new readings of every device in the second run",
            )
        code = again.process.wait(60)
        assert code == 0, again.output
    finally:
        again.kill()
    with sqlite3.connect(data / "fieldline.db") as db:
        (users,) = db.execute("SELECT count(*) FROM gateway_users").fetchone()
    assert users == 1
    # Stopped cleanly and restarted quickly: no offline mail for the pause.
    assert len(offline_mails(mail_subjects(data))) == 1, mail_subjects(data)
