"""The device-memory measurement, shared by the regression test (test_memory_budget.py)
and the benchmark (bench/device_memory.py): a board folder as provision would fill it,
and a script that publishes a 1,000-reading backlog offline, then goes online and drains
it, printing `MEM <import> <online> <peak>` (bytes of heap) when the drain completed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from fieldline_provision.board_files import BoardFile

ROOT = Path(__file__).resolve().parents[2]

DRAIN = """
import gc, sys
import asyncio
gc.collect()
base = gc.mem_alloc()
from fieldline import Device
gc.collect()
imported = gc.mem_alloc() - base
PORT = int(sys.argv[1])
d = Device(device_id="mem-dev", mqtt={"host": "127.0.0.1", "port": PORT, "keepalive": 30},
           buffer={"dir": "memdata"})
for i in range(1000):
    d.publish({"temperature": 21.5, "humidity": 40.25, "n": i})
peak = [0]
async def sample():
    while True:
        a = gc.mem_alloc()
        if a > peak[0]:
            peak[0] = a
        await asyncio.sleep_ms(1)
async def main():
    asyncio.create_task(sample())
    d.start()
    waited = 0
    while d.journal.ack_pos < d.journal.end_pos:
        await asyncio.sleep_ms(5)
        waited += 5
        if waited > 20000:  # a task died of MemoryError: the drain will not finish
            print("STUCK")
            return
    gc.collect()
    online = gc.mem_alloc() - base
    print("MEM", imported, online, peak[0] - base)
asyncio.run(main())
"""


def board_with(files: list[BoardFile], work: Path) -> Path:
    """A board's flash in `work`: the files at their board paths, and umqtt for reference."""
    if work.exists():
        shutil.rmtree(work)
    for board_file in files:
        target = work / board_file.board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(board_file.data)
    shutil.copytree(ROOT / "tests/broker/micropython/umqtt", work / "lib/umqtt")
    return work


def run(interpreter: Path, board: Path, script: str, port: int, heap: int | None):
    """The numbers the script printed (after MEM or UMQTT), or None when it did not
    finish (a MemoryError, a stuck drain, the 40 s timeout)."""
    (board / "mem_script.py").write_text(script)
    shutil.rmtree(board / "memdata", ignore_errors=True)
    command = [str(interpreter)] + (["-X", f"heapsize={heap}"] if heap else [])
    try:
        done = subprocess.run(
            [*command, "mem_script.py", str(port)], cwd=board, capture_output=True,
            text=True, timeout=40, env={"MICROPYPATH": "lib:.frozen"},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    for line in done.stdout.splitlines():
        if line.startswith(("MEM", "UMQTT")):
            return [int(x) for x in line.split()[1:]]
    return None
