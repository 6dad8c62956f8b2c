"""Issue 15: what a device reports about a config version or a command travels the
telemetry path (broker -> ingestor -> queue -> storage) to the devices service, on both
stacks (real: Mosquitto, RabbitMQ, PostgreSQL; embedded): the API shows it; a report
that is not one is dead-lettered with its reason; the backend's own publishes on
devices/<id>/config and /commands are never forwarded as if the device had said them."""

from __future__ import annotations

import json

from fieldline_backend.infra.queue import open_dead_letters
from tests.pipeline.conftest import ALL
from tests.support.servers import wait_for


def publish_acked(device, topic: str, body) -> None:
    """As the device, QoS 1, until the broker's PUBACK (bytes as they are, else JSON)."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    info = device.publish(payload, topic=topic)
    info.wait_for_publish(10)
    assert info.is_published()


def reported(http, device_id: str):
    return http.get(f"/api/v1/devices/{device_id}/config").json()["reported"]


def test_reports_reach_the_config_state_and_bad_ones_the_dead_letters(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as http:
        device = pipeline.device(http, "reporter")
        path = f"/api/v1/devices/{device.device_id}/config"
        assert http.put(path, json={"interval_s": 5}).status_code == 200
        topic = f"devices/{device.client_id}/config/reported"

        def report(body) -> None:
            publish_acked(device, topic, body)

        report({"version": 1, "status": "rejected", "error": "no such pin"})
        for bad in (b"applied", {"version": 1, "status": "maybe"}, {"version": -1}):
            report(bad)

        state = wait_for(lambda: reported(http, device.device_id), 30, "the device's report")
        assert state["version"] == 1 and state["status"] == "rejected", state
        assert state["error"] == "no such pin"
        report({"version": 1, "status": "applied"})
        wait_for(
            lambda: reported(http, device.device_id)["status"] == "applied", 30, "a newer report"
        )
        box = open_dead_letters(pipeline.settings)
        try:

            def config_letters():
                found = [d for d in box.list(50) if str(d.headers.get("topic")) == topic]
                return found if len(found) >= 3 else None

            letters = wait_for(config_letters, 20, "three dead config reports")
        finally:
            box.close()
        reasons = sorted(letter.reason for letter in letters)
        assert all(r.startswith("invalid payload: config report") for r in reasons), reasons
        device.close()
        stats = pipeline.storage_stats()
        assert stats["dead_letter_reasons"].get("unknown topic", 0) == 0, stats


def test_command_answers_reach_the_command_and_bad_ones_the_dead_letters(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as http:
        device = pipeline.device(http, "commanded")
        path = f"/api/v1/devices/{device.device_id}/commands"
        command = http.post(path, json={"name": "calibrate", "args": {"to": 21.5}}).json()
        topic = f"devices/{device.client_id}/commands/result"

        def answer(body) -> None:
            publish_acked(device, topic, body)

        def status() -> str:
            return http.get(f"{path}/{command['id']}").json()["status"]

        answer({"id": command["id"], "status": "delivered"})
        wait_for(lambda: status() == "delivered", 30, "delivered")
        bad = (b"done", {"id": command["id"]}, {"id": "cmd-1", "ok": True}, {"ok": True})
        for body in bad:
            answer(body)
        answer({"id": command["id"], "ok": True, "result": {"offset": -0.4}})
        wait_for(lambda: status() == "succeeded", 30, "succeeded")
        done = http.get(f"{path}/{command['id']}").json()
        assert done["result"] == {"offset": -0.4} and done["error"] is None, done
        answer({"id": command["id"], "status": "delivered"})  # late: changes nothing
        box = open_dead_letters(pipeline.settings)
        try:

            def letters():
                found = [d for d in box.list(50) if str(d.headers.get("topic")) == topic]
                return found if len(found) >= len(bad) else None

            dead = wait_for(letters, 20, "the bad answers in the dead letters")
        finally:
            box.close()
        assert all(d.reason.startswith("invalid payload: command result") for d in dead)
        assert http.get(f"{path}/{command['id']}").json()["status"] == "succeeded"
        device.close()
