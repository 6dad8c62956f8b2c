"""Issue 15, part 3: what a device reports about its update (devices/<id>/ota/reported)
travels the telemetry path (broker -> ingestor -> queue -> storage) to the devices
service, on both stacks (real: Mosquitto, RabbitMQ, PostgreSQL; embedded): the rollout
moves through canary to completed on those reports alone, the device's running version
is kept, a report that is not one is dead-lettered with its reason; the chunk requests
a device publishes (ota/get) and the backend's offers and chunks are never forwarded."""

from __future__ import annotations

from fieldline_backend.infra.queue import open_dead_letters
from tests.pipeline.conftest import ALL
from tests.pipeline.test_device_reports import publish_acked
from tests.registry.test_api_bundles import a_bundle
from tests.support.servers import wait_for


def test_ota_reports_drive_a_rollout_and_bad_ones_are_dead_letters(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as http:
        device = pipeline.device(http, "updating")
        bundle = http.post(
            "/api/v1/bundles",
            content=a_bundle("2.0.1"),
            headers={"Content-Type": "application/octet-stream"},
        ).json()
        rollout = http.post(
            "/api/v1/rollouts", json={"bundle_id": bundle["id"], "devices": [device.device_id]}
        ).json()
        assert rollout["state"] == "canary", rollout
        topic = f"devices/{device.client_id}/ota/reported"

        def report(body) -> None:
            publish_acked(device, topic, body)

        def update() -> dict:
            return http.get(f"/api/v1/devices/{device.device_id}/update").json()

        report({"version": "1.0.0", "state": "running"})
        wait_for(lambda: update()["running_version"] == "1.0.0", 30, "the running version")
        bad = (
            b"downloading",
            {"rollout": rollout["id"], "version": "2.0.1", "state": "flashing"},
            {"version": "2.0.1", "state": "staged"},  # no rollout named
            {"rollout": rollout["id"], "version": "2.0.1", "state": "downloading", "progress": 101},
        )
        for body in bad:
            report(body)
        # Chunk requests are the bundle server's, not the pipeline's: never dead letters.
        publish_acked(
            device,
            f"devices/{device.client_id}/ota/get",
            {"bundle": bundle["id"], "path": "manifest.json", "offset": 0},
        )
        base = {"rollout": rollout["id"], "version": "2.0.1"}
        report(base | {"state": "downloading", "progress": 40})
        wait_for(lambda: update()["rollout"]["progress"] == 40, 30, "downloading 40%")
        for state in ("staged", "rebooting", "confirmed"):
            report(base | {"state": state})

        def completed():
            answer = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
            return answer if answer["state"] == "completed" else None

        done = wait_for(completed, 30, "the rollout to complete")
        assert done["counts"] == {"confirmed": 1}, done
        assert update()["running_version"] == "2.0.1"

        box = open_dead_letters(pipeline.settings)
        try:

            def letters():
                found = [d for d in box.list(50) if str(d.headers.get("topic")) == topic]
                return found if len(found) >= len(bad) else None

            dead = wait_for(letters, 20, "the bad reports in the dead letters")
        finally:
            box.close()
        assert all(d.reason.startswith("invalid payload: ota report") for d in dead), [
            d.reason for d in dead
        ]
        device.close()
        stats = pipeline.storage_stats()
        assert stats["dead_letter_reasons"].get("unknown topic", 0) == 0, stats
