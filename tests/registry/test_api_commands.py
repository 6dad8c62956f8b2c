"""Issue 15, part 2: commands through the public API on both stacks, with the real devices
and mqtt_auth services: a command reaches the device's own topic (and no other
device's), owners are kept apart, bad input is 422, at most 20 wait per device (429),
an unknown command id is 404 naming the command, expiry. The device's answers through
the pipeline: tests/pipeline/test_device_reports.py; on the rig: hil_tests."""

from __future__ import annotations

import json
import time

import pytest

from tests.registry.test_api_config import register


def device_listener(stack, mqtt_client, device: dict, topic: str | None = None):
    mqtt = device["mqtt"]
    client = mqtt_client(stack, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert client.connect()
    assert client.subscribe(topic or f"devices/{device['id']}/commands") in (1, 0x80)
    return client


def test_a_command_reaches_its_device_only(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        target, bystander = register(http, "target"), register(http, "bystander")
        listener = device_listener(registry_stack, mqtt_client, target)
        snoop = device_listener(
            registry_stack, mqtt_client, bystander, f"devices/{target['id']}/commands"
        )
        answer = http.post(
            f"/api/v1/devices/{target['id']}/commands",
            json={"name": "open_valve", "args": {"seconds": 5}, "ttl_s": 60},
        )
        assert answer.status_code == 202, answer.text
        command = answer.json()
        assert command["status"] == "pending" and command["name"] == "open_valve"
        deadline = time.monotonic() + 5
        while not listener.messages:
            assert time.monotonic() < deadline, "the device never got its command"
            time.sleep(0.05)
        sent = json.loads(listener.messages[0].payload)
        assert sent["id"] == command["id"] and sent["args"] == {"seconds": 5}
        assert sent["name"] == "open_valve" and sent["expires"] > time.time() * 1000
        time.sleep(0.5)
        assert snoop.messages == [], "another device read the command"
        got = http.get(f"/api/v1/devices/{target['id']}/commands/{command['id']}").json()
        assert got == command
        assert http.get(f"/api/v1/devices/{target['id']}/commands").json() == [command]


def test_another_user_can_neither_send_nor_read_commands(registry_stack):
    with registry_stack.signed_in() as alice, registry_stack.signed_in() as mallory:
        device = register(alice)
        path = f"/api/v1/devices/{device['id']}/commands"
        command = alice.post(path, json={"name": "ping"}).json()
        assert mallory.post(path, json={"name": "reboot"}).status_code == 404
        assert mallory.get(path).status_code == 404
        assert mallory.get(f"{path}/{command['id']}").status_code == 404
        assert [c["name"] for c in alice.get(path).json()] == ["ping"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "Reboot"}, "name"),
        ({"name": "a" * 33}, "name"),
        ({"name": "ping", "args": {"blob": "x" * 1100}}, "args"),
        ({"name": "ping", "args": [1]}, "args"),
        ({"name": "ping", "ttl_s": 0}, "ttl_s"),
        ({"name": "ping", "ttl_s": 86401}, "ttl_s"),
        ({"name": "ping", "when": "now"}, "when"),
        ({}, "name"),
    ],
)
def test_bad_commands_are_422(registry_stack, body, named):
    with registry_stack.signed_in() as http:
        device = register(http)
        answer = http.post(f"/api/v1/devices/{device['id']}/commands", json=body)
        assert answer.status_code == 422 and named in answer.text, answer.text
        assert http.get(f"/api/v1/devices/{device['id']}/commands").json() == []


def test_at_most_twenty_wait_and_expired_ones_free_their_place(registry_stack):
    with registry_stack.signed_in() as http:
        device = register(http)
        path = f"/api/v1/devices/{device['id']}/commands"
        # 19 that wait a minute, then one that expires in 2 s: only the request right
        # after it races its expiry (20 short ones failed on a slow CI machine, whose
        # 20 posts took longer than their 1 s).
        waiting = [http.post(path, json={"name": "ping", "ttl_s": 60}) for _ in range(19)]
        short = http.post(path, json={"name": "ping", "ttl_s": 2})
        assert all(a.status_code == 202 for a in [*waiting, short])
        refused = http.post(path, json={"name": "ping"})
        assert refused.status_code == 429 and "20 commands waiting" in refused.text
        assert refused.headers["Retry-After"]
        time.sleep(2.2)  # nobody took the short one: expired, its place is free
        assert http.post(path, json={"name": "ping"}).status_code == 202
        assert http.post(path, json={"name": "ping"}).status_code == 429
        states = [c["status"] for c in http.get(path, params={"limit": 50}).json()]
        assert states.count("expired") == 1 and states.count("pending") == 20, states
        missing = http.get(f"{path}/cmd-aaaaaaaaaaaaaaaa")
        assert missing.status_code == 404 and "no command" in missing.text
