"""The pipeline on the two stacks the product runs on:

- "real":     PostgreSQL (fresh database), a private Mosquitto with the project's
              configuration kept by the real mqtt_auth, a private vhost on the shared
              RabbitMQ, a database of its own on the shared InfluxDB;
- "embedded": SQLite, amqtt in-process, the durable local queue, the SQLite series store.

`pipeline_kind` is parametrized over both; `start_pipeline(services)` starts a Fieldline
process of those services (in a thread) and returns a `Pipeline`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.infra.timeseries import open_timeseries
from tests.pipeline.support import Device, ServiceProcess, Vhost, influx_statement
from tests.support.servers import MosquittoInstance, free_port
from tests.support.stack import RunningStack, running_stack

ALL = ("gateway", "devices", "mqtt_auth", "ingestor", "storage")
PIPELINE = ("mqtt_auth", "ingestor", "storage")  # devices made through mqtt_auth directly
KINDS = ("real", "embedded")


@dataclass
class Pipeline:
    kind: str
    settings: Settings
    running: RunningStack | None = None
    mosquitto: MosquittoInstance | None = None
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def internal_token(self) -> str:
        return self.settings.internal_token

    def store(self):
        store = open_timeseries(self.settings)
        return store

    def env(self, **extra) -> dict[str, str]:
        """FIELDLINE_* for a subprocess service that joins this pipeline."""
        s = self.settings
        values = {
            "FIELDLINE_DATA_DIR": str(s.data_dir),
            "FIELDLINE_INTERNAL_TOKEN": s.internal_token,
            "FIELDLINE_MQTT_AUTH_URL": self.running.base_url,
            "FIELDLINE_DEVICES_URL": self.running.base_url,
            "FIELDLINE_STORAGE_BATCH_SECONDS": "0.1",
            "FIELDLINE_LOG_LEVEL": "INFO",
        }
        optional = {
            "FIELDLINE_DATABASE_URL": s.database_url,
            "FIELDLINE_MQTT_URL": s.mqtt_url,
            "FIELDLINE_AMQP_URL": s.amqp_url,
            "FIELDLINE_INFLUX_URL": s.influx_url,
            "FIELDLINE_INFLUX_DATABASE": s.influx_database,
            "FIELDLINE_MQTT_PORT": str(s.mqtt_port),
        }
        values.update({k: v for k, v in optional.items() if v})
        values.update(extra)
        return values

    def spawn(self, service: str, tmp_path, **extra) -> ServiceProcess:
        process = ServiceProcess(
            service, self.env(**extra), tmp_path / f"{service}-{len(self.processes)}.log"
        )
        self.processes.append(process)
        return process.start()

    # ---- the public API ------------------------------------------------------------

    def signed_in(self) -> httpx.Client:
        from fieldline_backend.gateway.users import create_user_in

        username = f"user{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        create_user_in(self.settings, username, password)
        with self.running.client() as client:
            answer = client.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        return self.running.client(headers={"Authorization": f"Bearer {token}"})

    def register(self, http: httpx.Client, name: str = "probe", metadata=None) -> dict:
        answer = http.post("/api/v1/devices", json={"name": name, "metadata": metadata or {}})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def device(self, http: httpx.Client, name: str = "probe", metadata=None) -> Device:
        created = self.register(http, name, metadata)
        host, port = self.settings.broker_address
        return Device(host, port, created["mqtt"], created["id"])

    def account(self, owner_id: str = "owner-1", name: str = "probe", metadata=None) -> Device:
        """A device account made through mqtt_auth's internal API, connected."""
        device_id = f"dev-{secrets.token_hex(6)}"
        with self.running.internal_client() as http:
            answer = http.post(
                "/internal/mqtt-accounts",
                json={
                    "device_id": device_id,
                    "owner_id": owner_id,
                    "name": name,
                    "metadata": metadata or {},
                },
            )
        assert answer.status_code == 201, answer.text
        host, port = self.settings.broker_address
        return Device(host, port, answer.json(), device_id)

    def reconnect(self, device: Device) -> Device:
        host, port = self.settings.broker_address
        return Device(host, port, device.credentials, device.device_id)

    # ---- what got stored -----------------------------------------------------------

    def stored_counts(self, device_ids: Sequence[str], store=None) -> dict[str, int]:
        own = store is None
        store = store or self.store()
        try:
            return {d: len(store.marks(d, 0, 2**53)) for d in device_ids}
        finally:
            if own:
                store.close()

    def wait_stored(self, expected: dict[str, int], timeout: float = 60) -> dict[str, int]:
        """Wait until every device has exactly its expected count; fail naming the gap."""
        store = self.store()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    counts = self.stored_counts(list(expected), store)
                except Exception as error:  # store down during a fault test: keep waiting
                    counts = {"error": repr(error)}
                if counts == expected:
                    return counts
                if time.monotonic() > deadline:
                    raise AssertionError(f"stored {counts}, expected {expected}")
                time.sleep(0.25)
        finally:
            store.close()

    def tags_of(self, device_id: str) -> list[dict[str, str]]:
        """Every distinct tag set the store holds for a device's readings."""
        if self.kind == "real":
            from tests.pipeline.support import influx_select

            series = influx_select(
                self.settings.influx_url,
                self.settings.influx_database,
                f"SELECT count(\"@received\") FROM telemetry WHERE device_id = '{device_id}' "
                "GROUP BY *",
            )
            # GROUP BY * names every tag key of the measurement, '' where a series has none.
            return [{k: v for k, v in s["tags"].items() if v} for s in series]
        import json
        import sqlite3

        with sqlite3.connect(self.settings.data_dir / "timeseries.db") as db:
            rows = db.execute(
                "SELECT DISTINCT tags FROM readings WHERE device_id = ?", (device_id,)
            ).fetchall()
        return [json.loads(tags) | {"device_id": device_id} for (tags,) in rows]

    def storage_stats(self) -> dict:
        with self.running.internal_client() as http:
            return http.get("/internal/telemetry/stats").json()


@pytest.fixture(params=KINDS)
def pipeline_kind(request) -> str:
    return request.param


@pytest.fixture
def start_pipeline(pipeline_kind, request, tmp_path):
    """start_pipeline(services=PIPELINE, **settings) -> context manager yielding a Pipeline."""
    cleanups = []
    base: dict = {
        "data_dir": tmp_path / "data",
        "internal_token": secrets.token_urlsafe(32),
        "http_port": 0,
        "storage_batch_seconds": 0.1,
        "ingestor_client_id": f"ingestor-{secrets.token_hex(4)}",
    }
    mosquitto = None
    if pipeline_kind == "real":
        mosquitto = MosquittoInstance(tmp_path / "mosquitto", free_port()).start()
        cleanups.append(mosquitto.stop)
        vhost = Vhost(request.getfixturevalue("amqp_url")).create()
        cleanups.append(vhost.delete)
        influx_url = request.getfixturevalue("influx_url")
        database = f"fltest_{secrets.token_hex(6)}"
        cleanups.append(lambda: influx_statement(influx_url, f'DROP DATABASE "{database}"'))
        base.update(
            database_url=request.getfixturevalue("pg_url"),
            mqtt_url=f"mqtt://fieldline-ingestor:{secrets.token_urlsafe(18)}@127.0.0.1:{mosquitto.port}",
            mosquitto_password_file=mosquitto.password_file,
            mosquitto_acl_file=mosquitto.acl_file,
            mosquitto_pid_file=mosquitto.pid_file,
            amqp_url=vhost.url,
            influx_url=influx_url,
            influx_database=database,
        )
    else:
        base["mqtt_port"] = free_port()
    base["data_dir"].mkdir(parents=True, exist_ok=True)

    @contextmanager
    def start(services: Sequence[str] = PIPELINE, **overrides) -> Iterator[Pipeline]:
        settings = Settings(**{**base, **overrides})
        pipeline = Pipeline(pipeline_kind, settings, mosquitto=mosquitto)
        try:
            with running_stack(settings, services) as running:
                pipeline.running = running
                pipeline.settings = running.settings
                yield pipeline
        finally:
            for process in pipeline.processes:
                process.stop()

    yield start
    for cleanup in reversed(cleanups):
        cleanup()
