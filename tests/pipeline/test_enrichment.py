"""Enrichment from mqtt_auth (the real component): a device deleted while its readings
wait in the queue is dead-lettered as unknown; changed metadata reaches the tags once
the cached entry is dropped: mqtt_auth tells storage on every change."""

from __future__ import annotations

from fieldline_backend.infra.queue import open_dead_letters
from tests.pipeline.support import reading
from tests.support.servers import wait_for


def test_readings_of_a_deleted_device_are_dead_lettered_as_unknown(start_pipeline, tmp_path):
    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:  # storage not yet running
        device = pipeline.account("owner-u", "short-lived")
        device.publish_all([reading(s, ts=1_764_000_000_000 + s) for s in range(3)])
        device.close()
        with pipeline.running.internal_client() as http:
            assert http.delete(f"/internal/mqtt-accounts/{device.client_id}").status_code == 204
        storage = pipeline.spawn("storage", tmp_path)
        box = open_dead_letters(pipeline.settings)
        letters = wait_for(lambda: len(box.list()) == 3 and box.list(), 30, "3 dead letters")
        assert all(letter.reason.startswith("unknown device") for letter in letters)
        assert all(letter.headers["client_id"] == device.client_id for letter in letters)
        stats = storage.get("/internal/telemetry/stats", pipeline.internal_token)
        assert stats["dead_letters"] == 3 and stats["dead_letter_reasons"] == {"unknown device": 3}
        assert pipeline.stored_counts([device.device_id]) == {device.device_id: 0}
        box.close()


def test_changed_metadata_reaches_the_tags_of_the_next_reading(start_pipeline):
    with start_pipeline() as pipeline:
        device = pipeline.account("owner-m", "mover", {"room": "kitchen"})
        device.publish_all([reading(1, ts=1_764_000_000_001)])
        pipeline.wait_stored({device.device_id: 1})
        with pipeline.running.internal_client() as http:
            changed = http.patch(
                f"/internal/mqtt-accounts/{device.client_id}", json={"metadata": {"room": "attic"}}
            )
            assert changed.status_code == 200, changed.text
        device.publish_all([reading(2, ts=1_764_000_000_002)])
        pipeline.wait_stored({device.device_id: 2})
        rooms = sorted(tags["room"] for tags in pipeline.tags_of(device.device_id))
        assert rooms == ["attic", "kitchen"], (
            "the old reading keeps its tags, the new one has the new"
        )
        device.close()
