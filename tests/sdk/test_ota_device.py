"""The whole device side of an OTA update (docs/ota.md) with the real firmware app on the
ESP32-sized interpreter at a board's heap, a private Mosquitto and an in-test bundle
server (paho; the backend's own is tested in hil_tests/test_ota.py): the offer is taken,
the bundle fetched chunk by chunk and verified, staged, the board resets, main.py's
loader switches, the new version confirms itself once a batch of readings was
acknowledged; a power cut halfway resumes where flash got to. Every reading arrives."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bytecode import compile_for
from tests.sdk.board import (
    DEVICE,
    ESP32_HEAP,
    ESP32_MICROPYTHON,
    BoardProcess,
    Collector,
    device_config,
    new_device_id,
    require_esp32_micropython,
)


@pytest.fixture(autouse=True)
def esp32_interpreter():
    require_esp32_micropython()


def mpy_files() -> list:
    """The SDK and the app as .mpy (6.3), as provision uploads them (from source, the app
    with the Updater is at the edge of an ESP32's heap: docs/ota.md, Numbers)."""
    return compile_for(firmware_files(), (6, 3)).files


def mpy_board(directory: Path, config: dict) -> Path:
    for f in mpy_files():
        target = directory / f.board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def bundle_files(version: str) -> dict[str, bytes]:
    """The SDK and the app as .mpy, app.py (source) printing the version, version.json."""
    never = ("main.py", "boot.py", "loader.py", "version.json")
    files = {f.board_path: f.data for f in mpy_files() if f.board_path not in never}
    del files["app.mpy"]
    files["app.py"] = (DEVICE / "app.py").read_bytes()
    files["app.py"] += f'\nprint("fieldline: app version {version}")\n'.encode()
    files["version.json"] = json.dumps({"version": version}).encode()
    return files


def make_bundle(files: dict[str, bytes], version: str) -> tuple[str, bytes]:
    entries = [
        {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        for p, d in sorted(files.items())
    ]
    manifest = json.dumps({"format": 1, "version": version, "mpy": "6.3", "files": entries})
    data = manifest.encode()
    return hashlib.sha256(data).hexdigest(), data


class BundleServer:
    """Answers devices/<id>/ota/get with one chunk, as docs/ota.md says the backend does;
    keeps every request and report."""

    def __init__(self, port: int, device_id: str, files: dict[str, bytes], version: str):
        self.device_id = device_id
        self.files = files
        self.version = version
        self.bundle, self.manifest = make_bundle(files, version)
        self.requests: list[dict] = []
        self.reports: list[dict] = []
        self.chunk_bytes = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"srv-{device_id}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        base = f"devices/{device_id}/ota"
        self.client.subscribe([(base + "/get", 0), (base + "/reported", 1)])
        self.client.loop_start()

    def offer(self, rollout: str = "ro-test", allow_downgrade: bool = False) -> None:
        body = {"rollout": rollout, "version": self.version, "bundle": self.bundle,
                "size": len(self.manifest), "allow_downgrade": allow_downgrade}  # fmt: skip
        self.client.publish(f"devices/{self.device_id}/ota", json.dumps(body), 1, True)

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        if message.topic.endswith("/reported"):
            with self._lock:
                self.reports.append(body)
            return
        with self._lock:
            self.requests.append(body)
        path, offset = body["path"], body["offset"]
        data = self.manifest if path == "manifest.json" else self.files[path]
        head = {"bundle": self.bundle, "path": path, "offset": offset, "size": len(data)}
        chunk = json.dumps(head).encode() + b"\n" + data[offset : offset + 1024]
        self.chunk_bytes += len(chunk)
        client.publish(f"devices/{self.device_id}/ota/chunk", chunk, 0)

    def states(self) -> list[str]:
        with self._lock:
            return [r["state"] for r in self.reports]

    def wait_state(self, state: str, timeout: float, board=None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for report in self.reports:
                    if report["state"] == state:
                        return report
            time.sleep(0.05)
        console = board.console()[-3000:] if board else ""
        raise AssertionError(f"no {state!r} report in {timeout} s: {self.states()}\n{console}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def esp32_board(board: Path) -> BoardProcess:
    return BoardProcess(board, heapsize=ESP32_HEAP, interpreter=str(ESP32_MICROPYTHON))


def wait_exit(process: BoardProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while process.process.poll() is None:
        assert time.monotonic() < deadline, process.console()[-3000:]
        time.sleep(0.05)


def staged_line(console: str) -> dict:
    m = re.search(
        r"staged (\S+): (\d+) files, (\d+) bytes in (\d+) ms, (\d+) chunks \((\d+) bytes\), "
        r"(\d+) requests, live heap (\d+)",
        console,
    )
    assert m, console[-3000:]
    keys = ("files", "bytes", "ms", "chunks", "wire_bytes", "requests", "heap")
    return dict(zip(keys, map(int, m.groups()[1:]), strict=True))


def all_seqs(consoles: list[str]) -> set[tuple[int, int]]:
    seqs, boot = set(), None
    for line in "\n".join(consoles).splitlines():
        if m := re.search(r"fieldline: boot (\d+) device", line):
            boot = int(m.group(1))
        elif m := re.search(r"fieldline: reading seq (\d+)", line):
            seqs.add((boot, int(m.group(1))))
    return seqs


def wait_all_arrived(collector: Collector, consoles: list[str], timeout: float = 30) -> int:
    wanted = all_seqs(consoles)
    deadline = time.monotonic() + timeout
    while True:
        got = {(r["boot"], r["seq"]) for r in collector.telemetry()}
        if wanted <= got:
            return len(wanted)
        assert time.monotonic() < deadline, f"never arrived: {sorted(wanted - got)[:20]}"
        time.sleep(0.2)


def test_an_update_is_fetched_staged_switched_and_confirmed(anonymous_mosquitto, tmp_path):
    port = anonymous_mosquitto.port
    device_id = new_device_id("ota")
    collector = Collector(port, device_id)
    config = device_config(device_id, port, interval_s=0.5, ota={"trial_s": 30})
    board = mpy_board(tmp_path / "board", config)
    server = BundleServer(port, device_id, bundle_files("1.1.0"), "1.1.0")
    consoles = []
    process = esp32_board(board)
    try:
        process.wait_for_line("fieldline: online", 30)
        running = server.wait_state("running", 10, process)
        assert running["state"] == "running" and running["rollout"] is None, running
        started = time.monotonic()
        server.offer()
        wait_exit(process, 120)  # staged, `rebooting` acknowledged: port.reset()
        fetched = time.monotonic() - started
        consoles.append(process.console())
        numbers = staged_line(process.console())
        states = server.states()
        assert states[-3:] == ["downloading", "staged", "rebooting"], states
        progress = [r["progress"] for r in server.reports if r["state"] == "downloading"]
        assert progress[0] == 0 and progress[-1] == 100 and progress == sorted(progress)
        assert len(progress) == len(set(progress)) <= 11, progress

        process = esp32_board(board)  # the board boots again: the loader switches
        process.wait_for_line("fieldline: app version 1.1.0", 30)
        confirmed = server.wait_state("confirmed", 30, process)
        assert confirmed == {"rollout": "ro-test", "version": "1.1.0", "state": "confirmed"}
        assert "on trial (boot 1)" in process.console()
        state = json.loads((board / "fieldline_data/ota/state.json").read_text())
        assert state["state"] == "confirmed"
        assert not (board / "fieldline_data/ota/old").exists()
        assert not (board / "fieldline_data/ota/new").exists()
        assert json.loads((board / "version.json").read_text()) == {"version": "1.1.0"}
        time.sleep(1)
        consoles.append(process.console())
        count = wait_all_arrived(collector, consoles)
    finally:
        process.kill()
        server.close()
        collector.close()
    total = sum(len(d) for d in server.files.values())
    print(
        f"\nOTA (in-test server): {len(server.files)} files, {total} bytes, fetched and staged "
        f"in {fetched:.1f} s ({numbers['ms']} ms downloading), {numbers['chunks']} chunks, "
        f"{numbers['wire_bytes']} chunk bytes, {numbers['requests']} requests; live heap "
        f"{numbers['heap']} bytes; {count} readings, every one arrived"
    )
    assert numbers["requests"] == numbers["chunks"]  # no chunk lost on a quiet LAN


def test_a_power_cut_halfway_resumes_where_flash_got_to(anonymous_mosquitto, tmp_path):
    port = anonymous_mosquitto.port
    device_id = new_device_id("otacut")
    collector = Collector(port, device_id)
    config = device_config(device_id, port, interval_s=0.5, ota={"trial_s": 30})
    board = mpy_board(tmp_path / "board", config)
    server = BundleServer(port, device_id, bundle_files("1.2.0"), "1.2.0")
    consoles = []
    process = esp32_board(board)
    try:
        process.wait_for_line("fieldline: online", 30)
        server.offer()
        server.wait_state("downloading", 30, process)
        deadline = time.monotonic() + 60
        while not [r for r in server.reports if r.get("progress", 0) >= 50]:
            assert time.monotonic() < deadline, server.states()
            time.sleep(0.01)
        process.kill()  # the power cut
        consoles.append(process.console())
        asked = len(server.requests)
        last = server.requests[-1]
        on_flash = board / "fieldline_data/ota/new" / last["path"]
        have = on_flash.stat().st_size if on_flash.exists() else 0

        process = esp32_board(board)
        wait_exit(process, 120)
        consoles.append(process.console())
        after = [r for r in server.requests[asked:] if r["path"] != "manifest.json"]
        assert after[0]["path"] == last["path"] and after[0]["offset"] == have, (after[0], have)
        refetched = {r["path"] for r in after}
        done_before = {r["path"] for r in server.requests[:asked]} - {last["path"]}
        assert not refetched & done_before, "files finished before the cut were fetched again"
        process = esp32_board(board)
        server.wait_state("confirmed", 30, process)
        time.sleep(1)
        consoles.append(process.console())
        wait_all_arrived(collector, consoles)
    finally:
        process.kill()
        server.close()
        collector.close()
