"""Issue 3, "Done when" 2: parts killed or stopped while readings flow; every reading
ends up stored exactly once. The storage kill and the store outage also run on the
embedded defaults (the ingestor and the queue live in the embedded broker's process
there; see docs/pipeline.md)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from tests.pipeline.support import Flow, RabbitNode, rabbit_workdir
from tests.support.servers import InfluxInstance, free_port, wait_for

pytestmark = pytest.mark.slow


def _devices(pipeline, count=2):
    return [pipeline.account("owner-f", f"fault {i}") for i in range(count)]


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_ingestor_sigkilled_and_restarted(start_pipeline, tmp_path):
    with start_pipeline(("mqtt_auth", "storage")) as pipeline:
        ingestor = pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID="ingestor-k")
        devices = _devices(pipeline)
        flow = Flow(devices, per_second=150).start()
        wait_for(lambda: sum(pipeline.stored_counts(list(flow.sent)).values()) > 100, 30, "flow")
        ingestor.kill()
        flow.run_for(2)
        ingestor.start()
        flow.run_for(2)
        sent = flow.stop()
        assert all(count > 300 for count in sent.values()), sent
        pipeline.wait_stored(sent, timeout=90)
        for device in devices:
            device.close()


def test_storage_sigkilled_and_restarted(start_pipeline, tmp_path):
    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:
        storage = pipeline.spawn("storage", tmp_path)
        devices = _devices(pipeline)
        flow = Flow(devices, per_second=150).start()
        wait_for(lambda: sum(pipeline.stored_counts(list(flow.sent)).values()) > 100, 30, "flow")
        storage.kill()
        flow.run_for(2)
        storage.start()
        flow.run_for(2)
        sent = flow.stop()
        pipeline.wait_stored(sent, timeout=90)
        for device in devices:
            device.close()


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_rabbitmq_restarted(start_pipeline, tmp_path):
    node = RabbitNode(rabbit_workdir()).start()
    try:
        with start_pipeline(amqp_url=node.url) as pipeline:
            devices = _devices(pipeline)
            flow = Flow(devices, per_second=150).start()
            wait_for(
                lambda: sum(pipeline.stored_counts(list(flow.sent)).values()) > 100, 60, "flow"
            )
            node.stop()
            flow.run_for(1)
            node.start()
            flow.run_for(3)
            sent = flow.stop()
            pipeline.wait_stored(sent, timeout=120)
            for device in devices:
                device.close()
    finally:
        node.stop()
        shutil.rmtree(node.workdir, ignore_errors=True)


def test_store_down_for_10_seconds(start_pipeline, tmp_path, pipeline_kind):
    influx = None
    overrides = {}
    if pipeline_kind == "real":
        influx = InfluxInstance(tmp_path / "influx", free_port()).start()
        overrides = {"influx_url": influx.url}
    try:
        with start_pipeline(**overrides) as pipeline:
            devices = _devices(pipeline)
            flow = Flow(devices, per_second=150).start()
            wait_for(
                lambda: sum(pipeline.stored_counts(list(flow.sent)).values()) > 100, 30, "flow"
            )
            if influx is not None:
                influx.stop()
                flow.run_for(10)
                influx.start()
            else:
                # The SQLite store's outage: its file locked by someone else for 10 s.
                blocker = sqlite3.connect(pipeline.settings.data_dir / "timeseries.db")
                blocker.execute("BEGIN EXCLUSIVE")
                flow.run_for(10)
                blocker.rollback()
                blocker.close()
            flow.run_for(1)
            sent = flow.stop()
            pipeline.wait_stored(sent, timeout=90)
            stats = pipeline.storage_stats()
            assert stats["retries"] > 0, "the outage was never noticed"
            assert pipeline.running.ctx.extras["storage"].workers[0].thread.is_alive()
            for device in devices:
                device.close()
    finally:
        if influx is not None:
            influx.stop()
