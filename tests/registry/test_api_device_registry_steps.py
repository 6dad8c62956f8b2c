"""The registry's order of steps when mqtt_auth or the database fails: never a
half-made device. mqtt_auth is faked here (a neighbour, on demand failing); the
registry, its SQLite table and the HTTP mapping are real."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI, Response

from fieldline_backend.common.db import Database
from fieldline_backend.common.settings import Settings
from fieldline_backend.devices.mqtt_accounts import MqttAuthFailed
from fieldline_backend.devices.repository import DeviceRepository
from fieldline_backend.devices.service import DEVICE_ID_PATTERN, DeviceRegistry, new_device_id
from fieldline_backend.gateway.auth import accounts_for
from tests.support.servers import free_port, wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.anyio  # the registry is async; anyio's pytest plugin runs it

ENDPOINT = {"host": "mqtt.example.org", "port": 8883, "tls": True}


class FakeMqttAccounts:
    """Records calls; `fail` maps an operation to the error it raises."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.fail: dict[str, MqttAuthFailed] = {}

    async def _record(self, operation: str, *args):
        self.calls.append((operation, *args))
        if operation in self.fail:
            raise self.fail[operation]

    async def create(self, device_id, owner_id, name, metadata):
        await self._record("create", device_id)
        return {"client_id": device_id, "username": device_id, "password": "p" * 24}

    async def rotate(self, client_id):
        await self._record("rotate", client_id)
        return {"client_id": client_id, "username": client_id, "password": "q" * 24}

    async def update(self, client_id, changes):
        await self._record("update", client_id, dict(changes))

    async def delete(self, client_id):
        await self._record("delete", client_id)


@pytest.fixture
def registry(tmp_path) -> Iterator[DeviceRegistry]:
    database = Database(f"sqlite:///{tmp_path / 'devices.db'}")
    database.migrate()
    yield DeviceRegistry(DeviceRepository(database), FakeMqttAccounts(), ENDPOINT)
    database.dispose()


def test_device_ids_are_dev_and_12_random_base32_chars():
    ids = {new_device_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(DEVICE_ID_PATTERN.fullmatch(i) for i in ids)


async def test_create_answers_credentials_with_the_public_endpoint(registry):
    device = await registry.create(1, "a", {"room": "x"})
    assert device.mqtt.model_dump() == {
        **ENDPOINT,
        "ca": None,  # no FIELDLINE_MQTT_PUBLIC_CA_FILE: provision's --ca supplies it
        "client_id": device.id,
        "username": device.id,
        "password": "p" * 24,
    }
    assert [d.id for d in await registry.list(1)] == [device.id]


async def test_refused_by_mqtt_auth_leaves_no_device_and_deletes_nothing(registry):
    registry.accounts.fail["create"] = MqttAuthFailed("conflict", status=409)
    with pytest.raises(MqttAuthFailed):
        await registry.create(1, "a", {})
    assert await registry.list(1) == []
    assert [c[0] for c in registry.accounts.calls] == ["create"]


async def test_mqtt_auth_timeout_leaves_no_device_and_removes_a_possible_account(registry):
    registry.accounts.fail["create"] = MqttAuthFailed("ReadTimeout", status=None)
    with pytest.raises(MqttAuthFailed):
        await registry.create(1, "a", {})
    assert await registry.list(1) == []
    (_, made), (operation, removed) = registry.accounts.calls
    assert operation == "delete" and removed == made


async def test_database_failure_after_the_account_removes_the_account(registry, monkeypatch):
    def broken_insert(device):
        raise RuntimeError("disk full")

    monkeypatch.setattr(registry.repository, "insert", broken_insert)
    with pytest.raises(RuntimeError):
        await registry.create(1, "a", {})
    (_, made), (operation, removed) = registry.accounts.calls
    assert operation == "delete" and removed == made


async def test_failed_disable_changes_nothing(registry):
    device = await registry.create(1, "a", {})
    registry.accounts.fail["update"] = MqttAuthFailed("down", status=None)
    with pytest.raises(MqttAuthFailed):
        await registry.change(device.id, 1, {"enabled": False})
    assert (await registry.get(device.id, 1)).enabled is True


async def test_database_failure_on_change_restores_mqtt_auth(registry, monkeypatch):
    device = await registry.create(1, "old", {"k": 1})

    def broken_update(*args):
        raise RuntimeError("database gone")

    monkeypatch.setattr(registry.repository, "update", broken_update)
    with pytest.raises(RuntimeError):
        await registry.change(device.id, 1, {"name": "new", "enabled": False})
    updates = [c for c in registry.accounts.calls if c[0] == "update"]
    assert updates == [
        ("update", device.id, {"name": "new", "enabled": False}),
        ("update", device.id, {"name": "old", "enabled": True}),
    ]


async def test_failed_delete_keeps_the_whole_device(registry):
    device = await registry.create(1, "a", {})
    registry.accounts.fail["delete"] = MqttAuthFailed("down", status=503)
    with pytest.raises(MqttAuthFailed):
        await registry.delete(device.id, 1)
    assert (await registry.get(device.id, 1)).id == device.id


# ---- the same through HTTP: a broken mqtt_auth gives 503 and no device -------------------


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the fake mqtt_auth to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def broken_mqtt_auth() -> FastAPI:
    app = FastAPI()

    @app.post("/internal/mqtt-accounts")
    async def create() -> Response:
        return Response("broker unreachable", status_code=500)

    @app.delete("/internal/mqtt-accounts/{client_id}")
    async def delete(client_id: str) -> Response:
        return Response(status_code=204)

    return app


def test_public_create_with_mqtt_auth_down_is_503_and_creates_nothing(tmp_path):
    with serving(broken_mqtt_auth()) as fake_url:
        settings = Settings(
            data_dir=tmp_path,
            http_port=0,
            mqtt_port=free_port(),
            internal_token=secrets.token_urlsafe(32),
            mqtt_auth_url=fake_url,
        )
        with running_stack(settings, ("gateway", "devices")) as stack:
            accounts_for(stack.ctx).users.create("ada", "correct horse battery")
            with stack.client() as http:
                token = http.post(
                    "/api/v1/auth/token",
                    data={"username": "ada", "password": "correct horse battery"},
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                answer = http.post("/api/v1/devices", json={"name": "x"}, headers=headers)
                assert answer.status_code == 503, answer.text
                assert answer.headers.get("Retry-After")
                assert http.get("/api/v1/devices", headers=headers).json() == []
