"""Issue 13, item 4: a publish to a mistyped own topic is not acked into nowhere.

A device may publish under devices/<its id>/ (ACL); the ingestor takes everything there
(devices/+/#). What storage does not know lands in telemetry.dead with the reason
"unknown topic", is counted in /metrics, and shows in the device's status as rejected.
Client: mosquitto_pub at QoS 1 (it waits for the PUBACK), as a user testing by hand."""

from __future__ import annotations

import json
import subprocess

from fieldline_backend.infra.queue import open_dead_letters
from tests.support.servers import wait_for

SERVICES = ("mqtt_auth", "ingestor", "storage")
MISTYPED = ("Telemetry", "telemetry/", "telemetri")


def mosquitto_pub(broker, device, topic: str, payload: str) -> None:
    args = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv311"]
    args += ["-i", device.client_id, "-u", device.client_id, "-P", device.password]
    args += ["-q", "1", "-t", topic, "-m", payload]
    done = subprocess.run(args, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, f"mosquitto_pub {topic}: {done.stderr}"


def test_mistyped_topics_are_dead_lettered_counted_and_shown_in_status(start_broker):
    with start_broker(SERVICES) as broker:
        device = broker.device()
        counted_before = broker.metric("fieldline_ingestor_unknown_topic_total")
        reading = json.dumps({"seq": 1, "boot": 1, "values": {"t": 20.5}})
        for suffix in MISTYPED:
            mosquitto_pub(broker, device, f"{device.prefix}/{suffix}", reading)
        mosquitto_pub(broker, device, f"{device.prefix}/telemetry", reading)  # the control

        box = open_dead_letters(broker.settings)
        try:

            def dead_topics():
                letters = box.list(50)
                found = {str(d.headers.get("topic")): d.reason for d in letters}
                return found if len(found) >= len(MISTYPED) else None

            found = wait_for(dead_topics, 15, "three dead letters")
        finally:
            box.close()
        expected = {f"{device.prefix}/{s}" for s in MISTYPED}
        assert set(found) == expected, f"dead letters: expected {expected}, got {found}"
        assert all(r.startswith("unknown topic") for r in found.values()), found

        counted = broker.metric("fieldline_ingestor_unknown_topic_total")
        assert counted == counted_before + len(MISTYPED), f"counted {counted_before}->{counted}"
        dead = broker.metric("fieldline_storage_dead_letters_total", reason="unknown topic")
        assert dead >= len(MISTYPED), f"storage dead letters by reason 'unknown topic': {dead}"

        with broker.running.internal_client() as http:

            def status():
                answer = http.get(f"/internal/telemetry/devices/{device.client_id}/status")
                assert answer.status_code == 200, answer.text
                body = answer.json()
                return body if body["readings_last_hour"] == 1 else None

            body = wait_for(status, 10, "the control reading to be stored")
        hour = body["completeness"]["last_hour"]
        assert hour.get("rejected") == len(MISTYPED), f"status last hour: {hour}"
