"""Issue 3, "Done when" 3: two ingestors and two storage workers at once (Mosquitto's
shared subscription, competing consumers on RabbitMQ): no loss, no duplicate, and the
load is shared. Real stack only: amqtt delivers nothing to shared subscriptions."""

from __future__ import annotations

import httpx
import pytest

from tests.pipeline.support import Flow
from tests.support.servers import wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_two_ingestors_two_storage_workers_share_the_load(start_pipeline, tmp_path):
    with start_pipeline(("mqtt_auth",)) as pipeline:
        ingestors = [
            pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID=f"ingestor-{i}")
            for i in range(2)
        ]
        # A small prefetch so that one worker cannot take the whole backlog.
        storages = [
            pipeline.spawn(
                "storage",
                tmp_path,
                FIELDLINE_STORAGE_PREFETCH="50",
                FIELDLINE_STORAGE_BATCH_SIZE="50",
            )
            for _ in range(2)
        ]
        token = pipeline.internal_token
        wait_for(
            lambda: all(i.get("/internal/ingestor/stats", token)["connected"] for i in ingestors),
            30,
            "both ingestors subscribed",
        )
        devices = [pipeline.account("owner-s", f"scale {i}") for i in range(4)]
        flow = Flow(devices, per_second=400).start()
        flow.run_for(5)
        sent = flow.stop()
        pipeline.wait_stored(sent, timeout=90)

        forwarded = [i.get("/internal/ingestor/stats", token)["forwarded"] for i in ingestors]
        stored = [s.get("/internal/telemetry/stats", token)["stored_readings"] for s in storages]
        total = sum(sent.values())
        assert sum(forwarded) >= total, (forwarded, total)
        assert all(f > total * 0.1 for f in forwarded), f"ingestors forwarded {forwarded}"
        assert sum(stored) >= total, (stored, total)
        assert all(s > total * 0.1 for s in stored), f"storage workers stored {stored}"
        for device in devices:
            device.close()


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_three_ingestors_three_storage_workers_one_of_each_sigkilled(start_pipeline, tmp_path):
    """Issue 8, "Done when" 3: 3 + 3 replicas, one ingestor and one storage worker
    SIGKILLed while readings flow. The killed ingestor comes back under its client id
    (as a container restart does: same host name), so its Mosquitto session hands over
    what it never PUBACKed; the killed worker's unacked batch goes to the other two.
    Every reading is stored exactly once: the counts per device equal what was sent."""
    with start_pipeline(("mqtt_auth",)) as pipeline:
        token = pipeline.internal_token
        ingestors = [
            pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID=f"replica-{i}")
            for i in range(3)
        ]
        storages = [
            pipeline.spawn(
                "storage",
                tmp_path,
                FIELDLINE_STORAGE_PREFETCH="50",
                FIELDLINE_STORAGE_BATCH_SIZE="50",
            )
            for _ in range(3)
        ]
        wait_for(
            lambda: all(i.get("/internal/ingestor/stats", token)["connected"] for i in ingestors),
            30,
            "three ingestors subscribed",
        )
        devices = [pipeline.account("owner-r", f"replica {i}") for i in range(6)]
        flow = Flow(devices, per_second=300).start()
        victim_ingestor, victim_storage = ingestors[0], storages[0]
        wait_for(
            lambda: (
                victim_ingestor.get("/internal/ingestor/stats", token)["forwarded"] > 50
                and victim_storage.get("/internal/telemetry/stats", token)["stored_readings"] > 50
            ),
            30,
            "the victims to be busy before the kill",
        )
        victim_ingestor.kill()
        victim_storage.kill()
        flow.run_for(3)  # the survivors carry the load meanwhile
        pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID="replica-0")
        flow.run_for(2)
        sent = flow.stop()
        assert sum(sent.values()) > 1000, sent
        pipeline.wait_stored(sent, timeout=90)  # exact: nothing lost, nothing twice
        survivors = [s.get("/internal/telemetry/stats", token) for s in storages[1:]]
        assert all(s["stored_readings"] > 0 for s in survivors), survivors
        # Each process's /metrics counts what that process stored (compose scrapes these).
        for process, stats in zip(storages[1:], survivors, strict=True):
            metrics = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=10).text
            line = f"fieldline_storage_readings_stored_total {float(stats['stored_readings'])}"
            assert line in metrics.splitlines(), (line, metrics[:2000])
        for device in devices:
            device.close()
