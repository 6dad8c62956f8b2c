"""Scaling the ingestors down: a replica removed for good (here SIGKILLed and never
restarted) still gets a share of the telemetry routed to its Mosquitto session.
`fieldline ingestor retire <client id>` forwards what that session holds and leaves
the shared subscription; afterwards the remaining replica gets everything, and every
reading is stored exactly once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.pipeline.support import Flow
from tests.support.servers import wait_for

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_a_retired_replica_strands_nothing(start_pipeline, tmp_path):
    with start_pipeline(("mqtt_auth",)) as pipeline:
        token = pipeline.internal_token
        leaving = pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID="retire-a")
        staying = pipeline.spawn("ingestor", tmp_path, FIELDLINE_INGESTOR_CLIENT_ID="retire-b")
        pipeline.spawn("storage", tmp_path)
        wait_for(
            lambda: all(
                i.get("/internal/ingestor/stats", token)["connected"] for i in (leaving, staying)
            ),
            30,
            "both ingestors subscribed",
        )
        devices = [pipeline.account("owner-x", f"retire {i}") for i in range(4)]
        flow = Flow(devices, per_second=200).start()
        wait_for(
            lambda: leaving.get("/internal/ingestor/stats", token)["forwarded"] > 20,
            30,
            "the leaving replica to take its share",
        )
        leaving.kill()  # gone for good: its share now piles up in its Mosquitto session
        flow.run_for(2)
        retire = subprocess.run(
            [shutil.which("fieldline"), "ingestor", "retire", "retire-a", "--quiet-seconds", "1"],
            env={**os.environ, **pipeline.env()},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert retire.returncode == 0, retire.stdout + retire.stderr[-3000:]
        drained = int(re.search(r"(\d+) message\(s\) forwarded", retire.stdout).group(1))
        assert drained > 0, f"nothing was waiting in the session: {retire.stdout}"
        flow.run_for(2)  # only the staying replica is in the share now
        sent = flow.stop()
        pipeline.wait_stored(sent, timeout=90)
        for device in devices:
            device.close()
