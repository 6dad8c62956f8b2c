"""Real servers for tests: the shared ones started by scripts/services.sh, and private
instances (Mosquitto, InfluxDB) a test may stop, restart or start empty.

A missing service fails the test with a message naming it; nothing is skipped.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("FIELDLINE_SERVICES_DIR", ROOT / ".services"))
PROJECT_MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "fieldline.conf"

DEFAULTS = {
    "FIELDLINE_TEST_PG_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "FIELDLINE_TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "FIELDLINE_TEST_MQTT_PORT": "1883",
    "FIELDLINE_TEST_MOSQUITTO_PORT": "18830",
    "FIELDLINE_TEST_MOSQUITTO_DIR": str(STATE / "mosquitto"),
    "FIELDLINE_TEST_INFLUX_URL": "http://127.0.0.1:18086",
    "FIELDLINE_TEST_SMTP_PORT": "18025",
    "FIELDLINE_TEST_SMTP_MAILDIR": str(STATE / "smtp" / "maildir"),
}


def service_env() -> dict[str, str]:
    """URLs of the shared services: $STATE/env written by services.sh, else defaults."""
    values = dict(DEFAULTS)
    env_file = STATE / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith("FIELDLINE_TEST_")})
    return values


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_port(port: int, name: str, host: str = "127.0.0.1") -> None:
    if not port_open(port, host):
        pytest.fail(
            f"{name} is not reachable at {host}:{port}; start it with `scripts/services.sh up`",
            pytrace=False,
        )


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port below the kernel's ephemeral range, never the same one twice here.
    Below the range: a server stopped and started again on its port (the outage tests)
    must not find it taken meanwhile by some client's outgoing connection, which takes
    its local port from that range."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randint(max(low - 12000, 1024), low - 1)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # a crowded range: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll until predicate() is truthy; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---- PostgreSQL: one throwaway database per use ----------------------------------------


def create_pg_database(admin_url: str) -> str:
    """Create an empty database and return its URL; drop it with drop_pg_database."""
    import psycopg

    name = f"fieldline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    import psycopg

    admin_url, name = url.rsplit("/", 1)
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- Private Mosquitto instances ----------------------------------------------------


@dataclass
class MosquittoInstance:
    """A Mosquitto of our own on a free port. With project_config it uses the project's
    settings and a password/ACL file pair (initially empty); otherwise anonymous."""

    workdir: Path
    port: int
    project_config: bool = True
    process: subprocess.Popen | None = None

    @property
    def password_file(self) -> Path:
        return self.workdir / "passwords"

    @property
    def acl_file(self) -> Path:
        return self.workdir / "acl"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self, extra: str = "") -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = []
        if self.project_config:
            lines.append(PROJECT_MOSQUITTO_CONF.read_text())
            self.password_file.touch()
            self.acl_file.touch()
            lines += [f"password_file {self.password_file}", f"acl_file {self.acl_file}"]
        else:
            lines += ["allow_anonymous true", "max_queued_messages 0", "set_tcp_nodelay true"]
            lines += ["persistence true", "autosave_interval 1"]
        lines += [
            f"listener {self.port} 127.0.0.1",
            f"pid_file {self.pid_file}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "user root",
            extra,
        ]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, extra: str = "") -> MosquittoInstance:
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is not installed; run `scripts/services.sh up`", pytrace=False)
        config = self.write_config(extra)
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        process = self.process
        wait_for(
            lambda: port_open(self.port) or process.poll() is not None,
            10,
            f"Mosquitto on port {self.port}",
        )
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace")[-2000:]
            raise AssertionError(f"Mosquitto on port {self.port} exited: {error}")
        return self

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# ---- Private InfluxDB instances ------------------------------------------------------


@dataclass
class InfluxInstance:
    workdir: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxInstance:
        if shutil.which("influxd") is None:
            pytest.fail("influxd is not installed; run `scripts/services.sh up`", pytrace=False)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{self.workdir}/meta"
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""
        )
        log = open(self.workdir / "influxd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            ["influxd", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(lambda: port_open(self.port), 30, f"InfluxDB on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
