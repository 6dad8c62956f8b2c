"""`fieldline simulate` with 50 devices and --faults against the real infrastructure:
every sent reading readable back, counted once more straight from InfluxDB, and
--cleanup leaves no device behind."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.pipeline.conftest import ALL
from tests.pipeline.support import influx_select

DEVICES = 50


def personal_token(pipeline) -> str:
    with pipeline.signed_in() as owner:
        answer = owner.post("/api/v1/tokens", json={"name": "simulate test"})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def test_simulate_50_devices_with_faults_every_reading_read_back(start_pipeline):
    with start_pipeline(ALL) as pipeline:
        token = personal_token(pipeline)
        command = [
            sys.executable, "-m", "fieldline_backend.cli", "simulate",
            "--api", pipeline.running.base_url, "--token", token,
            "--devices", str(DEVICES), "--rate", "2", "--duration", "20",
            "--faults", "--cleanup",
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=240)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output

        run_id = re.search(r"tagged simulator=(\w+)", output).group(1)
        lines = re.findall(
            r"sent (\d+)  acknowledged (\d+)  buffered (\d+)  reconnects (\d+)", output
        )
        assert len(lines) >= 3, f"no live line: {output}"
        sent, acknowledged, buffered, reconnects = map(int, lines[-1])  # the final line
        assert f"all {sent} sent readings found through the API" in output, output
        assert sent >= DEVICES * 2 * 15, output  # ~2/s for 20 s each, allowing a slow start
        assert acknowledged == sent and buffered == 0, output
        assert reconnects > 0, f"--faults dropped no connection: {output}"

        # The same count straight from the store, past the API: one point per reading.
        series = influx_select(
            pipeline.settings.influx_url,
            pipeline.settings.influx_database,
            f"SELECT count(n) FROM telemetry WHERE simulator = '{run_id}'",
        )
        assert series and series[0]["values"][0][1] == sent, (series, sent)

        with pipeline.signed_in() as owner:
            left = owner.get("/api/v1/devices", params={"tag": f"simulator:{run_id}"})
        assert left.status_code == 200 and left.json() == [], left.text
