"""Done-when 1: every module imports under the MicroPython unix port, and the device app
runs with simulated sensors; its readings reach a subscriber with correct values, ts, seq."""

from __future__ import annotations

import json
import subprocess
import time

import paho.mqtt.publish as mqtt_publish
import pytest

from tests.sdk.board import (
    DEVICE,
    SDK,
    BoardProcess,
    Collector,
    assert_in_order_once,
    build_board,
    device_config,
    micropython_path,
    new_device_id,
)


def test_every_module_imports_under_micropython(tmp_path):
    board = build_board(tmp_path / "board", device_config("dev-import", 1))
    modules = ["fieldline." + p.stem for p in SDK.glob("*.py") if p.stem != "__init__"]
    modules += [p.stem for p in DEVICE.glob("*.py") if p.stem != "main"]
    script = "import sys\nsys.path.append('.frozen')\n"
    script += "".join(f"import {name}\n" for name in ["fieldline", *modules])
    script += f"print('imported', {len(modules) + 1})\n"
    result = subprocess.run(
        [str(micropython_path()), "-c", script],
        cwd=board,
        env={"MICROPYPATH": "lib:."},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"imported {len(modules) + 1}", result.stdout + result.stderr


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
def test_device_app_readings_reach_a_subscriber(anonymous_mosquitto, tmp_path, interpreter):
    port = anonymous_mosquitto.port
    device_id = new_device_id("app")
    collector = Collector(port, device_id)
    config = device_config(
        device_id,
        port,
        sensors=[
            {"kind": "simulated", "name": "counter", "mode": "counter"},
            {"kind": "simulated", "name": "temperature", "base": 20, "amplitude": 5},
            {"kind": "dht22", "pin": 4},  # no such hardware on the unix port: left out
        ],
    )
    board = build_board(tmp_path / "board", config)
    started_ms = int(time.time() * 1000)
    device = BoardProcess(board, interpreter=interpreter)
    try:
        collector.wait_for_seqs(set(range(1, 11)), timeout=30, device=device)
        readings = [r for r in collector.telemetry() if r["seq"] <= 10]
        assert_in_order_once([r["seq"] for r in readings], "first ten readings")
        now_ms = int(time.time() * 1000)
        for r in readings:
            assert r["boot"] == 1
            # The counter sensor counts samples; one reading per sample: counter == seq.
            assert r["values"]["counter"] == r["seq"], r
            assert 15.0 <= r["values"]["temperature"] <= 25.0, r
            assert started_ms - 1000 <= r["ts"] <= now_ms, (r, started_ms, now_ms)
        timestamps = [r["ts"] for r in readings]
        assert timestamps == sorted(timestamps)
        assert b"online" in collector.on_topic("/status")
        assert "sensor 'dht22' not available" in device.console()

        command = {"id": "cmd-aaaaaaaaaaaaaaaa", "name": "sample", "args": {}}
        mqtt_publish.single(
            f"devices/{device_id}/commands", json.dumps(command), qos=1, port=port,
            hostname="127.0.0.1",
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while len(collector.on_topic("/commands/result")) < 2:
            assert time.monotonic() < deadline, device.console()[-2000:]
            time.sleep(0.1)
        taken, done = [json.loads(p) for p in collector.on_topic("/commands/result")[:2]]
        assert taken == {"id": command["id"], "status": "delivered"}, taken
        assert done["ok"] is True and done["result"]["values"]["counter"] >= 1, done
        sampled = done["result"]["seq"]  # the reading the command took is sent like any
        collector.wait_for_seqs({sampled}, timeout=15, device=device)
    finally:
        device.kill()
        collector.close()


def test_last_will_marks_a_killed_device_offline(anonymous_mosquitto, tmp_path):
    port = anonymous_mosquitto.port
    device_id = new_device_id("will")
    collector = Collector(port, device_id)
    board = build_board(tmp_path / "board", device_config(device_id, port))
    device = BoardProcess(board)
    try:
        collector.wait_for_seqs({1, 2}, timeout=30)
        device.kill()
        # keepalive 2 s: the broker publishes the will after 1.5 keepalives of silence
        deadline = time.monotonic() + 15
        while b"offline" not in collector.on_topic("/status") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert collector.on_topic("/status")[-1] == b"offline", collector.on_topic("/status")
    finally:
        device.kill()
        collector.close()
