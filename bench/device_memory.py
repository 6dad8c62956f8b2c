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
  app        the same for the firmware app as a board boots it (main.py -> app.py: config,
             sensor, status LED, the SDK), on the ESP32-sized interpreter: the smallest
             heap at which it comes online and drains a 1,000-reading backlog within 15 s
Reference in the same run, same interpreter: micropython-lib's umqtt.simple (vendored in
tests/broker/micropython/umqtt) imported, connected and publishing QoS 1.

    .venv/bin/python bench/device_memory.py --romfs

measures the same drain and app on the ESP32-sized interpreter with the .mpy files in a
ROMFS image (mpremote's builder) mounted at /rom, as a board with a ROMFS partition mounts
it: bytecode runs in place instead of being copied to the heap. On a board the image is in
flash; here it is a bytes object on the heap, so each try gets heap + the image's size
(+1 KB for the object), and the figures are that heap less the image.

The last line is `RESULT esp32_mpy_min_heap=<bytes> esp32_py_min_heap=<bytes> ...`.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldline_provision.board_files import firmware_files  # noqa: E402
from fieldline_provision.bytecode import compile_for  # noqa: E402
from tests.sdk.board import ESP32_MICROPYTHON, device_config, micropython_path  # noqa: E402
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


# The app's backlog, put in its journal at a large heap before each try: 1,000 readings.
FILL = """
import json
from fieldline import Device
d = Device(json.load(open("config.json")))
for i in range(1000):
    d.publish({"counter": float(i)})
d.journal.close()
print("FILLED")
"""
# After a try, at a large heap: was everything acknowledged (the ack saved when idle)?
DRAINED = """
from fieldline.journal import Journal
j = Journal("fieldline_data/journal")
print("DRAINED", 1 if j.ack_pos >= j.end_pos and j.end_pos > 0 else 0)
"""


def min_heap(interpreter: Path, board: Path, port: int, high: int, tries=None) -> int | None:
    tries = tries or (lambda heap: run(interpreter, board, DRAIN, port, heap))
    low, best = 16 * 1024, None
    while low <= high:
        middle = (low + high) // 2 // 2048 * 2048
        if tries(middle):
            best, high = middle, middle - 2048
        else:
            low = middle + 2048
    return best


def app_drains(interpreter: Path, board: Path, heap: int) -> bool:
    """Boot the app (main.py) with a 1,000-reading backlog at `heap`; drained in 15 s?"""
    shutil.rmtree(board / "fieldline_data", ignore_errors=True)
    mount = MOUNT_ROMFS if (board / "rom.img").exists() else ""
    filled = subprocess.run(
        [str(interpreter), "-c", mount + FILL], cwd=board, capture_output=True, text=True,
        timeout=60, env={"MICROPYPATH": "lib:.frozen"},
    )  # fmt: skip
    assert "FILLED" in filled.stdout, filled.stdout + filled.stderr
    with contextlib.suppress(subprocess.TimeoutExpired):  # the app runs for ever: 15 s
        subprocess.run(
            [str(interpreter), "-X", f"heapsize={heap}", "main.py"], cwd=board,
            capture_output=True, timeout=15, env={"MICROPYPATH": "lib:."},
        )  # fmt: skip
    checked = subprocess.run(
        [str(interpreter), "-c", mount + DRAINED], cwd=board, capture_output=True, text=True,
        timeout=60, env={"MICROPYPATH": "lib:.frozen"},
    )  # fmt: skip
    return "DRAINED 1" in checked.stdout


def app_board(files, work: Path, port: int) -> Path:
    board = board_with(files, work)
    config = device_config("mem-app", port, interval_s=3600, log_readings=False)
    config["mqtt"]["keepalive"] = 30
    (board / "config.json").write_text(json.dumps(config))
    return board


MOUNT_ROMFS = """
import sys, vfs
vfs.mount(vfs.VfsRom(open("rom.img", "rb").read()), "/rom")
sys.path[:0] = ["/rom", "/rom/lib"]  # where a board with ROMFS looks first
"""


def romfs_board(board: Path) -> int:
    """Move the board's .mpy files into rom.img (what `mpremote romfs deploy` would put in
    the partition); main.py mounts it first. The image's size."""
    from mpremote.romfs import make_romfs

    rom = Path(tempfile.mkdtemp()) / "rom"
    for mpy in board.rglob("*.mpy"):
        target = rom / mpy.relative_to(board)
        target.parent.mkdir(parents=True, exist_ok=True)
        mpy.rename(target)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the tree
        image = make_romfs(str(rom), mpy_cross=False)
    (board / "rom.img").write_bytes(image)
    main_py = board / "main.py"
    main_py.write_text(MOUNT_ROMFS + main_py.read_text())
    return len(image) + 1024


def romfs_main(broker) -> dict:
    results = {}
    files = compile_for(firmware_files(), (6, 3)).files
    board = board_with(files, Path(tempfile.mkdtemp()) / "romfs-sdk")
    image = romfs_board(board)
    script = MOUNT_ROMFS + DRAIN
    imported, online, _ = run(ESP32_MICROPYTHON, board, script, broker.port, 256 * 1024)
    lowest = min_heap(
        ESP32_MICROPYTHON, board, broker.port, 128 * 1024,
        lambda heap: run(ESP32_MICROPYTHON, board, script, broker.port, heap + image),
    )  # fmt: skip
    print(f"esp32  romfs import {imported:6} online {online:6} min heap {lowest} "
          f"(+ a {image}-byte image in flash)", flush=True)  # fmt: skip
    results.update(esp32_romfs_import=imported, esp32_romfs_min_heap=lowest)
    board = app_board(files, Path(tempfile.mkdtemp()) / "romfs-app", broker.port)
    image = romfs_board(board)
    lowest = min_heap(
        ESP32_MICROPYTHON, board, broker.port, 128 * 1024,
        lambda heap: app_drains(ESP32_MICROPYTHON, board, heap + image),
    )  # fmt: skip
    print(f"esp32  romfs app: min heap {lowest}", flush=True)
    results["esp32_romfs_app_min_heap"] = lowest
    return results


def main() -> int:
    broker = MosquittoInstance(
        Path(tempfile.mkdtemp()) / "mosquitto", free_port(), project_config=False
    )
    broker.start()
    results = {}
    try:
        if "--romfs" in sys.argv[1:]:
            results = romfs_main(broker)
            return 0
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
            if name == "esp32":
                for form, board_files in forms.items():
                    work = Path(tempfile.mkdtemp()) / f"app-{form}"
                    board = app_board(board_files, work, broker.port)
                    lowest = min_heap(
                        interpreter, board, broker.port, 160 * 1024,
                        lambda heap, b=board, i=interpreter: app_drains(i, b, heap),
                    )  # fmt: skip
                    print(f"{name:6} {form:4} app: min heap {lowest}", flush=True)
                    results[f"{name}_{form}_app_min_heap"] = lowest
            (umqtt,) = run(interpreter, board, UMQTT, broker.port, None)
            print(f"{name:6} umqtt.simple connected, 100 QoS 1 publishes: {umqtt}", flush=True)
            results[f"{name}_umqtt_simple"] = umqtt
    finally:
        broker.stop()
        print("RESULT " + " ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
