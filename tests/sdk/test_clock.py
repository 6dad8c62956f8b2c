"""Readings taken before the clock is synced carry their uptime, are held while the device
waits for NTP, and go out re-stamped with real time once it answers (under micropython).

The unix port's clock is always right, so the port's two clock functions are replaced in
the script (the port layer is the neighbour here; the Device, Clock and sender are real)."""

from __future__ import annotations

import subprocess
import time

from tests.sdk.board import Collector, build_board, device_config, micropython_path, new_device_id

SCRIPT = """
import sys, time
import asyncio
from fieldline import port
synced = [False]
port.time_is_synced = lambda: synced[0]
port.sync_time = lambda: synced[0]
from fieldline import Device
device = Device(device_id=sys.argv[1], mqtt={"port": int(sys.argv[2]), "keepalive": 5},
                ntp_wait_s=60)
async def main():
    device.start()
    for i in range(8):
        seq = device.publish({"n": i})
        print("published", seq, time.time_ns() // 1000000)
        await asyncio.sleep_ms(100)
    await asyncio.sleep_ms(1500)
    print("online", device.state, "unsent", device.buffer.has_unsent())
    synced[0] = True
    print("synced")
    for i in range(8, 11):
        device.publish({"n": i})
        await asyncio.sleep_ms(100)
    for _ in range(100):
        if not device.buffer.has_unsent() and not device.session.inflight:
            break
        await asyncio.sleep_ms(50)
    print("done")
asyncio.run(main())
"""


def test_readings_before_ntp_are_held_then_restamped(anonymous_mosquitto, tmp_path):
    broker = anonymous_mosquitto
    device_id = new_device_id("clock")
    collector = Collector(broker.port, device_id)
    board = build_board(tmp_path / "board", device_config(device_id, broker.port))
    (board / "clock_script.py").write_text(SCRIPT)
    process = subprocess.Popen(
        [str(micropython_path()), "clock_script.py", device_id, str(broker.port)],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("synced"):
                # Online for 1.5 s, clock unknown: nothing may have been sent yet.
                assert any(x.startswith("online online unsent True") for x in lines), lines
                assert not collector.seqs(boot=None), "readings went out without real time"
        process.wait(30)
        collector.wait_for_seqs(set(range(1, 12)), timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        collector.close()
    assert "done" in lines, lines
    published = {
        int(parts[1]): int(parts[2])
        for parts in (x.split() for x in lines if x.startswith("published"))
    }
    readings = {r["seq"]: r for r in collector.telemetry()}
    for seq, wall_ms in published.items():
        ts = readings[seq].get("ts")
        assert ts is not None, f"reading {seq} was not re-stamped: {readings[seq]}"
        assert abs(ts - wall_ms) <= 250, f"reading {seq}: ts {ts} vs taken at {wall_ms}"
    assert abs(readings[1]["ts"] - time.time() * 1000) < 60_000
