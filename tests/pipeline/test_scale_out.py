"""Issue 3, "Done when" 3: two ingestors and two storage workers at once (Mosquitto's
shared subscription, competing consumers on RabbitMQ): no loss, no duplicate, and the
load is shared. Real stack only: amqtt delivers nothing to shared subscriptions."""

from __future__ import annotations

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
