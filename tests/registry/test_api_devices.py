"""Issue 2, public device API end to end, on both stacks (PostgreSQL + Mosquitto, and
SQLite + the embedded broker), with the real devices and mqtt_auth services: the
credentials it hands out connect, owners are kept apart (5), bad input is 422 and never
500 (6), and no password reaches the logs (8)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from types import SimpleNamespace

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.common.settings import Settings
from fieldline_backend.devices.client import DeviceNotFound, DevicesClient
from fieldline_backend.gateway.auth import accounts_for
from tests.support.servers import free_port
from tests.support.stack import running_stack

SERVICES = ("gateway", "devices", "mqtt_auth")
PASSWORD = "correct horse battery"
DEVICE_ID = re.compile(r"dev-[a-z2-7]{12}")


@pytest.fixture
def api(start_stack) -> Iterator:
    with start_stack(SERVICES) as stack:
        yield stack


def sign_in(stack, username: str | None = None) -> dict:
    username = username or f"user{secrets.token_hex(3)}"
    accounts_for(stack.running.ctx).users.create(username, PASSWORD)
    with stack.running.client() as http:
        answer = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def register(http, headers: dict, name: str = "greenhouse", metadata: dict | None = None):
    answer = http.post(
        "/api/v1/devices", json={"name": name, "metadata": metadata or {}}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_registered_device_gets_credentials_once_that_connect(api, mqtt_client):
    headers = sign_in(api)
    with api.running.client() as http:
        device = register(http, headers, "greenhouse 1", {"room": "east", "floor": 2})
        assert DEVICE_ID.fullmatch(device["id"])
        mqtt = device["mqtt"]
        expected = api.settings.device_mqtt_endpoint()
        assert (mqtt["host"], mqtt["port"], mqtt["tls"]) == (
            expected["host"],
            expected["port"],
            expected["tls"],
        )
        assert mqtt["client_id"] == mqtt["username"] == device["id"]
        assert len(mqtt["password"]) >= 22

        read = http.get(f"/api/v1/devices/{device['id']}", headers=headers)
        assert read.status_code == 200
        assert "mqtt" not in read.json() and mqtt["password"] not in read.text
        assert read.json()["metadata"] == {"room": "east", "floor": 2}
        listed = http.get("/api/v1/devices", headers=headers).json()
        assert [d["id"] for d in listed] == [device["id"]]
        assert mqtt["password"] not in json.dumps(listed)

    client = mqtt_client(api, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert client.connect(), f"new device refused at CONNECT: {client.connack}"


def test_patch_disable_rotate_and_delete_reach_mqtt_auth_and_the_broker(api, mqtt_client):
    headers = sign_in(api)
    with api.running.client() as http, api.running.internal_client() as internal:
        device = register(http, headers, "kiln", {"site": "a"})
        device_id, old = device["id"], device["mqtt"]["password"]

        changed = http.patch(
            f"/api/v1/devices/{device_id}",
            json={"name": "kiln 2", "metadata": {"site": "b", "ok": True}},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["name"] == "kiln 2" and changed.json()["enabled"] is True
        info = internal.get(f"/internal/devices/by-client/{device_id}").json()
        assert (info["name"], info["metadata"]) == ("kiln 2", {"site": "b", "ok": True})

        rotated = http.post(f"/api/v1/devices/{device_id}/credentials/rotate", headers=headers)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["mqtt"]["password"]
        assert new != old
        assert not mqtt_client(api, device_id, device_id, old).connect()
        assert mqtt_client(api, device_id, device_id, new).connect()

        disabled = http.patch(
            f"/api/v1/devices/{device_id}", json={"enabled": False}, headers=headers
        )
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
        assert internal.get(f"/internal/devices/by-client/{device_id}").json()["enabled"] is False
        assert not mqtt_client(api, device_id, device_id, new).connect()

        assert http.delete(f"/api/v1/devices/{device_id}", headers=headers).status_code == 204
        assert http.get(f"/api/v1/devices/{device_id}", headers=headers).status_code == 404
        assert internal.get(f"/internal/devices/by-client/{device_id}").status_code == 404


def test_devices_are_listed_by_tag(api):
    headers = sign_in(api)
    with api.running.client() as http:
        east = register(http, headers, "a", {"room": "east", "live": True})
        register(http, headers, "b", {"room": "west", "live": True})
        found = http.get(
            "/api/v1/devices", params=[("tag", "room:east"), ("tag", "live:true")], headers=headers
        )
        assert [d["id"] for d in found.json()] == [east["id"]]
        assert http.get("/api/v1/devices?tag=nocolon", headers=headers).status_code == 422


def test_one_user_never_sees_or_touches_another_users_devices(api):
    alice, bob = sign_in(api, "alice"), sign_in(api, "bob")
    with api.running.client() as http:
        device = register(http, alice, "alice's sensor")
        path = f"/api/v1/devices/{device['id']}"
        assert http.get("/api/v1/devices", headers=bob).json() == []
        assert http.get(path, headers=bob).status_code == 404
        assert http.patch(path, json={"enabled": False}, headers=bob).status_code == 404
        assert http.patch(path, json={"name": "mine"}, headers=bob).status_code == 404
        assert http.post(f"{path}/credentials/rotate", headers=bob).status_code == 404
        assert http.delete(path, headers=bob).status_code == 404
        untouched = http.get(path, headers=alice).json()
        assert (untouched["name"], untouched["enabled"]) == ("alice's sensor", True)

        for method, url in [
            ("GET", "/api/v1/devices"),
            ("POST", "/api/v1/devices"),
            ("GET", path),
            ("PATCH", path),
            ("DELETE", path),
            ("POST", f"{path}/credentials/rotate"),
        ]:
            assert http.request(method, url).status_code == 401, (method, url)


BAD_BODIES = [
    ({"name": "", "metadata": {}}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"name": "line\nbreak"}, "name"),
    ({"name": 7}, "name"),
    ({"metadata": {}}, "name"),
    ({"name": "ok", "metadata": {"a": {"nested": 1}}}, "metadata"),
    ({"name": "ok", "metadata": {"a": [1]}}, "metadata"),
    ({"name": "ok", "metadata": {"9lives": "x"}}, "metadata"),
    ({"name": "ok", "metadata": {"device_id": "x"}}, "metadata"),
    ({"name": "ok", "metadata": {"k": "x" * 257}}, "metadata"),
    ({"name": "ok", "metadata": {f"k{i}": i for i in range(33)}}, "metadata"),
    ({"name": "ok", "metadata": ["not", "an", "object"]}, "metadata"),
    ({"name": "ok", "colour": "red"}, "colour"),
]


def test_bad_device_input_is_422_naming_the_field(tmp_path):
    """Validation runs in the gateway before any store is touched: one stack suffices
    (were a bad body let through, the absent devices service would answer 503)."""
    settings = Settings(
        data_dir=tmp_path, http_port=0, mqtt_port=free_port(), internal_token="t" * 32
    )
    with running_stack(settings, ("gateway",)) as stack:
        headers = sign_in(SimpleNamespace(running=stack))
        with stack.client() as http:
            for body, field in BAD_BODIES:
                answer = http.post("/api/v1/devices", json=body, headers=headers)
                assert answer.status_code == 422, (body, answer.text)
                locs = [error["loc"] for error in answer.json()["detail"]]
                assert any(field in loc for loc in locs), (body, locs)
                if field not in body:
                    continue  # a PATCH may leave out any field
                patch = http.patch("/api/v1/devices/dev-aaaaaaaaaaaa", json=body, headers=headers)
                assert patch.status_code == 422, (body, patch.text)


def _all_log_text(records) -> str:
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in records)


def test_logs_never_hold_a_device_password(api, caplog):
    caplog.set_level(logging.DEBUG)
    headers = sign_in(api)
    with api.running.client() as http:
        device = register(http, headers, "logged", {"room": "x"})
        rotated = http.post(
            f"/api/v1/devices/{device['id']}/credentials/rotate", headers=headers
        ).json()
    passwords = [device["mqtt"]["password"], rotated["mqtt"]["password"]]
    text = _all_log_text(caplog.records)
    assert caplog.records, "nothing was logged: the capture is not working"
    assert device["id"] in text  # the create was logged, just not its secret
    for password in passwords:
        assert password not in text


# ---- Hypothesis: whatever the body, 201 or 422, never 500 -----------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
names = st.one_of(
    st.text(max_size=140),
    st.text(min_size=120, max_size=2000),
    st.sampled_from(["", " ", "\x00", "\ud800", "é" * 128, "🌡️ greenhouse", "a\tb"]),
    json_value,
)
metadata_keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True),
    st.text(max_size=70),
)
metadata = st.one_of(
    st.dictionaries(metadata_keys, json_leaf, max_size=40),
    st.dictionaries(metadata_keys, json_value, max_size=5),
    json_value,
)
printable = st.characters(exclude_categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"])
plausible_bodies = st.fixed_dictionaries(  # mostly valid: exercises the 201 path
    {
        "name": st.text(printable, min_size=1, max_size=130),
        "metadata": st.dictionaries(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True),
            st.one_of(
                st.booleans(),
                st.integers(min_value=-(2**63), max_value=2**63 - 1),
                st.floats(allow_nan=False, allow_infinity=False),
                st.text(printable, max_size=260),
            ),
            max_size=34,
        ),
    }
)
bodies = st.one_of(
    plausible_bodies,
    st.fixed_dictionaries({"name": names, "metadata": metadata}),
    st.fixed_dictionaries({"name": names}, optional={"metadata": metadata, "extra": json_leaf}),
    json_value,
)


def test_any_device_body_gets_201_or_422_never_500(api):
    headers = {**sign_in(api), "Content-Type": "application/json"}
    with api.running.client() as http:
        existing = register(http, headers, "target")["id"]

        @given(body=bodies, patch=bodies)
        def check(body, patch):
            raw = json.dumps(body)  # ASCII escapes: lone surrogates and NaN reach the server
            created = http.post("/api/v1/devices", content=raw, headers=headers)
            assert created.status_code in (201, 422), (created.status_code, created.text)
            if created.status_code == 201:
                stored = created.json()
                assert 1 <= len(stored["name"]) <= 128 and stored["name"].isprintable()
                assert all(
                    isinstance(v, str | int | float | bool) for v in stored["metadata"].values()
                )
                assert stored["metadata"] == body["metadata"] if "metadata" in body else True
            changed = http.patch(
                f"/api/v1/devices/{existing}", content=json.dumps(patch), headers=headers
            )
            assert changed.status_code in (200, 422), (changed.status_code, changed.text)

        check()


def test_devices_client_gets_owned_devices_and_404s_the_rest(api):
    """The client other services use (telemetry queries, alert rules)."""
    with api.running.internal_client() as internal:
        made = internal.post(
            "/internal/devices", json={"owner_id": 7, "name": "a", "metadata": {"room": "k"}}
        )
        assert made.status_code == 201, made.text
        internal.post("/internal/devices", json={"owner_id": 7, "name": "b", "metadata": {}})
    device_id = made.json()["id"]

    async def scenario():
        async with httpx.AsyncClient(
            base_url=api.running.base_url,
            headers={"X-Fieldline-Internal": api.running.ctx.internal_token},
        ) as http:
            client = DevicesClient(http)
            device = await client.get(device_id, 7)
            assert (device.id, device.name, device.metadata) == (device_id, "a", {"room": "k"})
            for wrong_owner, wrong_id in [(8, device_id), (7, "dev-aaaaaaaaaaaa"), (7, "../x")]:
                with pytest.raises(DeviceNotFound) as raised:
                    await client.get(wrong_id, wrong_owner)
                assert raised.value.status_code == 404
            assert [d.name for d in await client.list(7)] == ["a", "b"]
            assert [d.id for d in await client.list(7, tags={"room": "k"})] == [device_id]
            assert await client.list(8) == []

    anyio.run(scenario)
