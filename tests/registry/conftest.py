"""Fixtures for the registry tests, on the two stacks the product runs on:

- "real":     PostgreSQL (fresh database) + a private Mosquitto with the project's
              configuration, kept by mqtt_auth through its password/ACL files + SIGHUP;
- "embedded": SQLite in a temporary data dir + the in-process amqtt broker on a free port.

`stack_kind` is parametrized over both; `start_stack(services)` starts a Fieldline
process for that kind (a context manager; call it again to restart on the same database
and, with fresh_broker=True on "real", an empty new Mosquitto). `mqtt_client(...)` makes
real paho-mqtt 2 clients (MQTT 3.1.1) that record what happens to them.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import paho.mqtt.client as mqtt
import pytest

from fieldline_backend.common.settings import Settings
from tests.support.servers import MosquittoInstance, free_port, wait_for
from tests.support.stack import RunningStack, running_stack

STACK_KINDS = ("real", "embedded")


# ---- MQTT clients that record what happens to them ----------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes


@dataclass
class RecordingClient:
    """A paho-mqtt 2 client (MQTT 3.1.1, no automatic reconnect) with its history."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    client: mqtt.Client = field(init=False)
    connack: object | None = None  # paho ReasonCode of the last CONNACK
    disconnects: list[object] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    subacks: dict[int, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnects.append(reason_code)

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append(Received(message.topic, bytes(message.payload)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subacks[mid] = [code.value for code in reason_codes]

    def connect(self, timeout: float = 5.0) -> bool:
        """Connect and wait for the broker's answer: True = accepted."""
        self.connack = None
        self.disconnects.clear()
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        wait_for(
            lambda: self.connack is not None or self.disconnects,
            timeout,
            f"a CONNACK for {self.client_id}",
        )
        return self.connack is not None and not self.connack.is_failure

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> int:
        """Subscribe and return the granted QoS (0x80 = refused)."""
        _, mid = self.client.subscribe(topic, qos)
        codes = wait_for(lambda: self.subacks.get(mid), timeout, f"a SUBACK for {topic}")
        return codes[0]

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        if qos:
            info.wait_for_publish(timeout)

    def wait_message(self, topic: str, payload: bytes, timeout: float = 5.0) -> Received:
        def found():
            with self.lock:
                return next(
                    (m for m in self.messages if m.topic == topic and m.payload == payload), None
                )

        return wait_for(found, timeout, f"{payload!r} on {topic} at {self.client_id}")

    def wait_disconnected(self, timeout: float = 5.0) -> float:
        """Seconds until the broker closed this connection (fails after `timeout`)."""
        start = time.monotonic()
        wait_for(lambda: self.disconnects, timeout, f"the broker to close {self.client_id}")
        return time.monotonic() - start

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.payload for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- the two stacks -----------------------------------------------------------------


@dataclass
class BrokerStack:
    kind: str
    running: RunningStack
    mosquitto: MosquittoInstance | None

    @property
    def settings(self) -> Settings:
        return self.running.settings

    @property
    def mqtt_address(self) -> tuple[str, int]:
        return self.settings.broker_address

    def signed_in(self, username: str | None = None, admin: bool = False) -> httpx.Client:
        """A public-API client signed in as a new user (needs the gateway running)."""
        from fieldline_backend.gateway.users import create_user_in

        username = username or f"user{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        create_user_in(self.settings, username, password, admin=admin)
        with self.running.client() as client:
            answer = client.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        return self.running.client(headers={"Authorization": f"Bearer {token}"})

    @property
    def backend_credentials(self) -> tuple[str, str]:
        from fieldline_backend.infra.broker import backend_credentials

        return backend_credentials(self.settings)


@pytest.fixture(params=STACK_KINDS)
def stack_kind(request) -> str:
    return request.param


@pytest.fixture
def start_stack(stack_kind, request, tmp_path):
    """start_stack(services=("mqtt_auth",), fresh_broker=False) -> context manager."""
    data_dir = tmp_path / "data"
    internal_token = secrets.token_urlsafe(32)
    database_url = request.getfixturevalue("pg_url") if stack_kind == "real" else None
    backend_password = secrets.token_urlsafe(18)
    brokers: list[MosquittoInstance] = []
    embedded_port = free_port()

    def new_mosquitto() -> MosquittoInstance:
        broker = MosquittoInstance(tmp_path / f"mosquitto-{len(brokers)}", free_port())
        brokers.append(broker.start())
        return broker

    @contextmanager
    def start(
        services: Sequence[str] = ("mqtt_auth",), fresh_broker: bool = False
    ) -> Iterator[BrokerStack]:
        nonlocal embedded_port
        values: dict = {
            "data_dir": data_dir,
            "http_port": 0,
            "internal_token": internal_token,
            "database_url": database_url,
        }
        mosquitto = None
        if stack_kind == "real":
            mosquitto = new_mosquitto() if fresh_broker or not brokers else brokers[-1]
            values.update(
                mqtt_url=f"mqtt://fieldline-ingestor:{backend_password}@127.0.0.1:{mosquitto.port}",
                mosquitto_password_file=mosquitto.password_file,
                mosquitto_acl_file=mosquitto.acl_file,
                mosquitto_pid_file=mosquitto.pid_file,
            )
        else:
            if fresh_broker:
                embedded_port = free_port()
            values["mqtt_port"] = embedded_port
        data_dir.mkdir(parents=True, exist_ok=True)
        with running_stack(Settings(**values), services) as running:
            yield BrokerStack(kind=stack_kind, running=running, mosquitto=mosquitto)

    yield start
    for broker in brokers:
        broker.stop()


REGISTRY_SERVICES = ("gateway", "devices", "mqtt_auth")


@pytest.fixture
def registry_stack(start_stack) -> Iterator[BrokerStack]:
    """gateway + devices + mqtt_auth on the parametrized stack (the public API flow)."""
    with start_stack(REGISTRY_SERVICES) as stack:
        yield stack


@pytest.fixture
def broker_stack(start_stack) -> Iterator[BrokerStack]:
    """mqtt_auth alone on the parametrized stack."""
    with start_stack() as stack:
        yield stack


@pytest.fixture
def mqtt_client() -> Iterator[Callable[..., RecordingClient]]:
    """mqtt_client(stack, client_id, username, password) -> an unconnected client;
    every client made is closed after the test."""
    made: list[RecordingClient] = []

    def make(
        stack: BrokerStack, client_id: str, username: str | None, password: str | None
    ) -> RecordingClient:
        host, port = stack.mqtt_address
        client = RecordingClient(host, port, client_id, username, password)
        made.append(client)
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            client.close()
