"""Issue 15, part 1: desired config through the public API on both stacks (PostgreSQL +
Mosquitto, SQLite + the embedded broker) with the real devices and mqtt_auth services:
versions merge and reach the device retained, owners are kept apart, bad input is 422
(never 500), a deleted device's retained config is cleared, and the embedded broker
(which keeps no retained message across a restart) gets every config again at start.
The device's report through the pipeline: tests/pipeline/test_config_reports.py."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.registry.conftest import REGISTRY_SERVICES


def register(http, name: str = "greenhouse") -> dict:
    answer = http.post("/api/v1/devices", json={"name": name})
    assert answer.status_code == 201, answer.text
    return answer.json()


def device_reader(stack, mqtt_client, device: dict):
    """A client logged in as the device, subscribed to its config."""
    mqtt = device["mqtt"]
    client = mqtt_client(stack, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert client.connect()
    assert client.subscribe(f"devices/{device['id']}/config") == 1
    return client


def retained_config(client, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.messages:
            return json.loads(client.messages[-1].payload)
        time.sleep(0.05)
    raise AssertionError("no retained config arrived")


def test_changes_merge_into_versions_the_device_receives(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        device = register(http)
        path = f"/api/v1/devices/{device['id']}/config"
        assert http.get(path).json() == {"desired": None, "reported": None, "pending": False}
        first = http.put(path, json={"interval_s": 30.0})
        assert first.status_code == 200, first.text
        assert first.json()["desired"]["config"] == {"interval_s": 30}
        sensors = [{"kind": "dht22", "pin": 4, "prefix": "shed_"}]
        second = http.put(path, json={"sensors": sensors, "app": {"threshold": 3.5}}).json()
        assert second["desired"]["version"] == 2 and second["pending"] is True
        whole = {"interval_s": 30, "sensors": sensors, "app": {"threshold": 3.5}}
        assert second["desired"]["config"] == whole
        reader = device_reader(registry_stack, mqtt_client, device)
        assert retained_config(reader) == {"version": 2, "config": whole}
        third = http.put(path, json={"app": None}).json()  # null: back to the device's own
        assert third["desired"]["config"] == {"interval_s": 30, "sensors": sensors}
        reader.wait_message(
            f"devices/{device['id']}/config",
            json.dumps({"version": 3, "config": third["desired"]["config"]}, sort_keys=True,
                       separators=(",", ":")).encode(),
        )  # fmt: skip
        assert http.get(path).json()["desired"]["version"] == 3


def test_another_user_can_neither_read_nor_change_a_config(registry_stack):
    with registry_stack.signed_in() as alice, registry_stack.signed_in() as mallory:
        device = register(alice)
        path = f"/api/v1/devices/{device['id']}/config"
        assert alice.put(path, json={"interval_s": 5}).status_code == 200
        assert mallory.get(path).status_code == 404
        answer = mallory.put(path, json={"interval_s": 86400})
        assert answer.status_code == 404, answer.text
        assert alice.get(path).json()["desired"]["config"] == {"interval_s": 5}
        assert mallory.get("/api/v1/devices/dev-aaaaaaaaaaaa/config").status_code == 404


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"interval_s": 0}, "interval_s"),
        ({"interval_s": 86401}, "interval_s"),
        ({"interval": 5}, "interval"),  # a typo is not silently ignored
        ({"sensors": []}, "sensors"),
        ({"sensors": [{"pin": 4}]}, "kind"),
        ({"sensors": [{"kind": "DHT22"}]}, "kind"),
        ({"sensors": [{"kind": "adc", "pin": [1, 2]}]}, "pin"),
        ({"sensors": [{"kind": "simulated"}] * 17}, "sensors"),
        ({"app": {"blob": "x" * 1100}}, "app"),
        ({"app": [1, 2]}, "app"),
    ],
)
def test_bad_changes_are_422_and_store_nothing(registry_stack, body, named):
    with registry_stack.signed_in() as http:
        device = register(http)
        path = f"/api/v1/devices/{device['id']}/config"
        answer = http.put(path, json=body)
        assert answer.status_code == 422, answer.text
        assert named in answer.text, answer.text
        assert http.get(path).json()["desired"] is None


def test_a_config_that_grows_past_its_bound_is_422(registry_stack):
    with registry_stack.signed_in() as http:
        device = register(http)
        path = f"/api/v1/devices/{device['id']}/config"
        assert http.put(path, json={"app": {"notes": "x" * 1000}}).status_code == 200
        sensors = [{"kind": "simulated", "name": f"n{i}", "mode": "x" * 60} for i in range(16)]
        answer = http.put(path, json={"sensors": sensors})  # fine alone, too much with app
        assert answer.status_code == 422 and "at most 2048" in answer.text, answer.text
        assert http.get(path).json()["desired"]["version"] == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(st.sampled_from(["interval_s", "sensors", "app", "x"]), JSON))
def test_any_json_body_is_answered_200_or_422(registry_stack, body):
    if not hasattr(registry_stack, "fuzz"):  # one user and device for every example
        with registry_stack.signed_in() as http:
            registry_stack.fuzz = (http.headers["Authorization"], register(http)["id"])
    authorization, device_id = registry_stack.fuzz
    with registry_stack.running.client(headers={"Authorization": authorization}) as http:
        answer = http.put(f"/api/v1/devices/{device_id}/config", json=body)
    assert answer.status_code in (200, 422), answer.text


def test_deleting_a_device_clears_its_retained_config(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        device = register(http)
        assert http.put(f"/api/v1/devices/{device['id']}/config", json={"interval_s": 9}).is_success
        assert http.delete(f"/api/v1/devices/{device['id']}").status_code == 204
    username, password = registry_stack.backend_credentials
    watcher = mqtt_client(registry_stack, f"watcher-{secrets.token_hex(3)}", username, password)
    assert watcher.connect()
    assert watcher.subscribe(f"devices/{device['id']}/config") == 1
    time.sleep(0.8)
    assert watcher.messages == [], "the deleted device's config is still retained"


def test_configs_are_published_again_when_the_service_starts(start_stack, mqtt_client):
    """The embedded broker loses retained messages with its process; on Mosquitto the
    publish is the same message again (harmless)."""
    with start_stack(REGISTRY_SERVICES) as stack, stack.signed_in() as http:
        device = register(http)
        path = f"/api/v1/devices/{device['id']}/config"
        assert http.put(path, json={"interval_s": 42}).status_code == 200
    with start_stack(REGISTRY_SERVICES) as stack:  # a restart
        reader = device_reader(stack, mqtt_client, device)
        assert retained_config(reader, timeout=10) == {
            "version": 1,
            "config": {"interval_s": 42},
        }
