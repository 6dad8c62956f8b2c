"""A whole `fieldline up` with data in it, for the console tests, in two flavours:

- "embedded": the defaults (SQLite, amqtt, the local queue, the SQLite series store,
  the maildir), exactly what `fieldline up` runs on a laptop;
- "postgres+influxdb": the same process on PostgreSQL (a fresh database) and InfluxDB (a
  database of its own), the stores an operator's console reads from.

Readings reach it the way a device sends them: MQTT to the broker, through the ingestor,
the queue and storage. Two users: `ada` owns two devices (one sending now, one silent
for a day), `bob` owns one that ada must never see.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.users import create_user_in
from tests.pipeline.support import Device
from tests.support.servers import create_pg_database, drop_pg_database, free_port, wait_for
from tests.support.stack import RunningStack, running_stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MINUTE = 60_000


@dataclass
class Person:
    username: str
    password: str
    api: httpx.Client  # bearer-token client on the public API
    devices: dict[str, dict] = field(default_factory=dict)  # name -> device JSON (+mqtt)


@dataclass
class ConsoleStack:
    kind: str
    running: RunningStack
    ada: Person
    bob: Person
    mqtt: dict[str, Device] = field(default_factory=dict)  # device id -> connected device

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def connect(self, device: dict) -> Device:
        if device["id"] not in self.mqtt:
            creds = device["mqtt"]
            self.mqtt[device["id"]] = Device("127.0.0.1", creds["port"], creds, device["id"])
        return self.mqtt[device["id"]]

    def publish(self, device: dict, readings: list[dict]) -> None:
        """Readings through the broker (batches of 500, as a draining device sends)."""
        link = self.connect(device)
        for i in range(0, len(readings), 500):
            link.publish_all([readings[i : i + 500]])

    def wait_stored(self, person: Person, device: dict, field: str, count: int, start) -> None:
        def stored() -> bool:
            answer = person.api.get(
                f"/api/v1/devices/{device['id']}/telemetry",
                params={"fields": field, "start": start, "stop": "now", "agg": "count"},
            )
            found = answer.json()["fields"][field] if answer.status_code == 200 else []
            # One window per range, aligned to the epoch: the range may touch two.
            return sum(value for _ts, value in found) >= count

        wait_for(stored, 60, f"{count} readings of {device['name']} to be stored")


def _person(running: RunningStack, username: str) -> Person:
    password = secrets.token_urlsafe(12)
    create_user_in(running.settings, username, password)
    with running.client() as client:
        answer = client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
    assert answer.status_code == 200, answer.text
    api = running.client(headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    return Person(username, password, api)


def _register(person: Person, name: str, metadata: dict | None = None) -> dict:
    answer = person.api.post("/api/v1/devices", json={"name": name, "metadata": metadata or {}})
    assert answer.status_code == 201, answer.text
    person.devices[name] = answer.json()
    return person.devices[name]


def history(now_ms: int, minutes: int, every_min: int = 1, boot: int = 1) -> list[dict]:
    """A reading per `every_min` minutes up to now: temperature wave, door on/off."""
    out = []
    for seq, back in enumerate(range(minutes, 0, -every_min)):
        out.append(
            {
                "ts": now_ms - back * MINUTE,
                "seq": seq,
                "boot": boot,
                "values": {"temperature": 20 + (seq % 60) / 10, "door": seq % 30 < 5},
            }
        )
    return out


@pytest.fixture(scope="package", params=["embedded", "postgres+influxdb"])
def console_stack(request, tmp_path_factory) -> Iterator[ConsoleStack]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    stores: dict = {}
    cleanups = []
    if request.param == "postgres+influxdb":
        database_url = create_pg_database(request.getfixturevalue("pg_admin_url"))
        cleanups.append(lambda: drop_pg_database(database_url))
        influx_url = request.getfixturevalue("influx_url")
        influx_database = f"console_{secrets.token_hex(4)}"
        cleanups.append(
            lambda: httpx.post(
                f"{influx_url}/query", data={"q": f'DROP DATABASE "{influx_database}"'}
            )
        )
        stores = dict(
            database_url=database_url, influx_url=influx_url, influx_database=influx_database
        )
    http_port = free_port()
    settings = Settings(
        **stores,
        data_dir=data_dir,
        http_port=http_port,
        # Mails link here: another spelling of the address, so a link proves where it came from.
        public_url=f"http://localhost:{http_port}",
        mqtt_port=free_port(),
        internal_token=secrets.token_urlsafe(32),
        monitor_interval=0.5,
        monitor_late_after=15.0,  # a loaded machine must not turn fresh readings into backlog
        storage_batch_seconds=0.1,
    )
    with running_stack(settings) as running:
        stack = ConsoleStack(
            request.param, running, _person(running, "ada"), _person(running, "bob")
        )
        try:
            now = int(time.time() * 1000)
            greenhouse = _register(stack.ada, "Greenhouse 1", {"room": "east"})
            mast = _register(stack.ada, "Weather mast")
            _register(stack.bob, "Bob's shed")
            # A day of 1-minute readings up to now; the mast went silent a day ago.
            stack.publish(greenhouse, history(now, 24 * 60))
            stack.publish(mast, history(now - 24 * 60 * MINUTE, 120, boot=3))
            stack.publish(stack.bob.devices["Bob's shed"], history(now, 30))
            # The SDK's retained status message: the greenhouse is online whatever the
            # age of its last reading; the mast never said so and is offline.
            link = stack.connect(greenhouse)
            link.client.publish(f"devices/{greenhouse['id']}/status", "online", 1, True)
            stack.wait_stored(stack.ada, greenhouse, "temperature", 24 * 60, "-25h")
            stack.wait_stored(stack.ada, mast, "temperature", 120, "-27h")
            yield stack
        finally:
            for link in stack.mqtt.values():
                link.close()
            stack.ada.api.close()
            stack.bob.api.close()
    for cleanup in cleanups:
        cleanup()
