"""Pieces the pipeline tests share: private RabbitMQ vhosts and nodes, InfluxDB
databases, Fieldline services as real subprocesses, simulated devices over paho."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import paho.mqtt.client as mqtt
import pytest

from tests.support.servers import ROOT, free_port, port_open, wait_for

FIELDLINE = str(ROOT / ".venv" / "bin" / "fieldline")


# ---- RabbitMQ -------------------------------------------------------------------------


def rabbitmqctl(*args: str, node: str | None = None, env: dict | None = None) -> str:
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed; run `scripts/services.sh up`", pytrace=False)
    command = ["rabbitmqctl", *(["-n", node] if node else []), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class Vhost:
    """A private vhost on the shared RabbitMQ: the fixed queue names stay ours alone."""

    base_url: str
    name: str = field(default_factory=lambda: f"fl-test-{secrets.token_hex(5)}")

    @property
    def url(self) -> str:
        return self.base_url.rsplit("/", 1)[0] + "/" + quote(self.name, safe="")

    def create(self) -> Vhost:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        with contextlib.suppress(AssertionError):
            rabbitmqctl("delete_vhost", self.name)


@dataclass
class RabbitNode:
    """A RabbitMQ node of our own on free ports, which a test may stop and start."""

    workdir: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"fl-test-{secrets.token_hex(4)}@localhost")
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.workdir / "node.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.workdir / "feature_flags"),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.workdir / "advanced.config"),
            "ERL_CRASH_DUMP": str(self.workdir / "erl_crash.dump"),
            "RABBITMQ_SERVER_START_ARGS": f"-kernel inet_dist_listen_min {self.dist_port} "
            f"-kernel inet_dist_listen_max {self.dist_port}",
        }

    def start(self) -> RabbitNode:
        if shutil.which("rabbitmq-server") is None:
            pytest.fail("rabbitmq-server is not installed", pytrace=False)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "mnesia").mkdir(exist_ok=True)
        (self.workdir / "log").mkdir(exist_ok=True)
        (self.workdir / "rabbitmq.conf").write_text("loopback_users = none\n")
        _give_to_rabbitmq_user(self.workdir)
        log = open(self.workdir / "server.out", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: port_open(self.port) or self.process.poll() is not None,
            120,
            f"the private RabbitMQ node on port {self.port}",
            interval=0.2,
        )
        if self.process.poll() is not None:
            raise AssertionError(
                f"private RabbitMQ exited; see {self.workdir / 'server.out'}:\n"
                + (self.workdir / "server.out").read_text()[-2000:]
            )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                rabbitmqctl("stop", node=self.name, env=self.env)
            except (AssertionError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def _give_to_rabbitmq_user(path: Path) -> None:
    """rabbitmq-server started as root drops to the `rabbitmq` user: let it in."""
    import pwd

    try:
        account = pwd.getpwnam("rabbitmq")
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, account.pw_uid, account.pw_gid)


def rabbit_workdir() -> Path:
    """Outside pytest's tmp dirs, which are closed to other users."""
    return Path(tempfile.mkdtemp(prefix="fl-rabbit-"))


# ---- InfluxDB ---------------------------------------------------------------------------


def influx_statement(url: str, q: str) -> dict:
    response = httpx.post(f"{url}/query", data={"q": q}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def influx_select(url: str, database: str, q: str) -> list[dict]:
    response = httpx.get(f"{url}/query", params={"db": database, "q": q, "epoch": "ms"}, timeout=30)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "error" not in result, result["error"]
    return result.get("series", [])


# ---- Fieldline services as subprocesses ------------------------------------------------


@dataclass
class ServiceProcess:
    """`fieldline serve <service>` as a real process a test may SIGKILL."""

    service: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> ServiceProcess:
        env = {**os.environ, **self.env, "FIELDLINE_HTTP_PORT": str(self.port)}
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [FIELDLINE, "serve", self.service], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            wait_for(
                lambda: self._healthy() or self.process.poll() is not None,
                60,
                f"`fieldline serve {self.service}` to answer /healthz",
                interval=0.1,
            )
            if self.process.poll() is not None:
                raise AssertionError(
                    f"fieldline serve {self.service} exited:\n{self.log_path.read_text()[-3000:]}"
                )
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, like a crash or an OOM kill."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str, token: str) -> dict:
        response = httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"X-Fieldline-Internal": token},
            timeout=10,
        )
        return response.json()


# ---- simulated devices -------------------------------------------------------------------


class Device:
    """A device on paho-mqtt 2 with its own credentials; counts what the broker acked."""

    def __init__(self, host: str, port: int, credentials: dict, device_id: str):
        self.device_id = device_id
        self.credentials = credentials
        self.client_id = credentials["client_id"]
        self.topic = f"devices/{self.client_id}/telemetry"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.username_pw_set(credentials["username"], credentials["password"])
        self.client.max_inflight_messages_set(200)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        wait_for(self.connected.is_set, 15, f"device {self.client_id} to connect")

    def publish(self, payload, qos: int = 1, topic: str | None = None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.publish(topic or self.topic, body, qos=qos)

    def publish_all(self, payloads, timeout: float = 60) -> None:
        infos = [self.publish(p) for p in payloads]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.1))
            assert info.is_published(), f"{self.client_id}: the broker did not ack a reading"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reading(seq: int, boot: int = 1, ts: int | None = None, **values) -> dict:
    body: dict = {"seq": seq, "boot": boot, "values": values or {"temperature": 20.0 + seq / 10}}
    if ts is not None:
        body["ts"] = ts
    return body


class Flow:
    """Readings flowing from devices at a steady rate on a thread, until stopped."""

    def __init__(self, devices: list[Device], per_second: float = 100.0, base_ts: int = 0):
        self.devices = devices
        self.interval = 1.0 / per_second
        self.base_ts = base_ts or 1_764_000_000_000 + secrets.randbelow(10**9) * 1000
        self.sent = {d.device_id: 0 for d in devices}
        self.infos: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Flow:
        self.thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            for device in self.devices:
                seq = self.sent[device.device_id]
                # Every 4th without ts: stamped on arrival, deduplicated by (boot, seq).
                ts = None if seq % 4 == 0 else self.base_ts + seq
                body = reading(seq, ts=ts, t=float(seq))
                self.infos.append(device.publish(body))
                self.sent[device.device_id] = seq + 1
            next_at += self.interval * len(self.devices)
            time.sleep(max(0.0, next_at - time.monotonic()))

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop(self, timeout: float = 120) -> dict[str, int]:
        """Stop; wait until the broker acked everything sent; the counts per device."""
        self.stopping.set()
        self.thread.join(10)
        # Polled, not wait_for_publish(): a reading published while the broker was away
        # has rc "no connection" yet stays queued in paho and goes out on reconnect.
        wait_for(
            lambda: all(info._published for info in self.infos),  # no public way here
            timeout,
            "the broker to ack every reading",
            interval=0.2,
        )
        return dict(self.sent)
