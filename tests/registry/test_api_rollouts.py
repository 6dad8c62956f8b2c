"""Issue 15, part 3: rollouts through the public API on both stacks, with the real
devices and mqtt_auth services and the devices' own MQTT accounts: offers reach the
canaries only (retained on devices/<id>/ota), then the rest; a rollout halts when
failures pass the ratio (queued devices never offered, offers not taken withdrawn),
completes when every device finished, can be cancelled; a device is in one running
rollout at a time (409); another user sees none of it (404). The device reports are
posted as storage posts them (devices' internal route); through the real pipeline:
tests/pipeline/test_ota_reports.py."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.registry.test_api_bundles import a_bundle, uploaded
from tests.registry.test_api_config import register


def offer_reader(stack, mqtt_client, device: dict):
    """A client logged in as the device, subscribed to its offer."""
    mqtt = device["mqtt"]
    client = mqtt_client(stack, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert client.connect()
    assert client.subscribe(f"devices/{device['id']}/ota") == 1
    return client


def retained_offer(stack, mqtt_client, device: dict, wait: float = 0.8) -> dict | None:
    """The offer a device connecting now gets (None: no retained offer)."""
    reader = offer_reader(stack, mqtt_client, device)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not reader.messages:
        time.sleep(0.05)
    reader.close()
    payloads = [m.payload for m in reader.messages if m.payload]
    return json.loads(payloads[-1]) if payloads else None


def wait_offer(stack, mqtt_client, device: dict, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offer = retained_offer(stack, mqtt_client, device, wait=0.3)
        if offer:
            return offer
    raise AssertionError(f"no offer reached {device['id']}")


def report(stack, device_id: str, body: dict) -> None:
    """As storage passes a device's ota/reported on."""
    with stack.running.internal_client() as http:
        answer = http.post(
            f"/internal/devices/{device_id}/ota/reported",
            json=body | {"at": datetime.now(UTC).isoformat()},
        )
    assert answer.status_code == 204, answer.text


def finish(stack, rollout: dict, device_id: str, how: str = "confirmed", error=None) -> None:
    base = {"rollout": rollout["id"], "version": rollout["version"]}
    for step in ({"state": "downloading", "progress": 50}, {"state": "staged"}):
        report(stack, device_id, base | step)
    report(stack, device_id, base | {"state": how, "error": error})


def start_rollout(http, devices: list[dict], **options) -> dict:
    bundle = uploaded(http, a_bundle(options.pop("version", "1.4.0")))
    body = {"bundle_id": bundle["id"], "devices": [d["id"] for d in devices], **options}
    answer = http.post("/api/v1/rollouts", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def states(rollout: dict) -> dict[str, str]:
    return {d["device_id"]: d["state"] for d in rollout["devices"]}


def canaries(rollout: dict) -> list[str]:
    return [d["device_id"] for d in rollout["devices"] if d["canary"]]


def test_canaries_then_the_rest_then_completed(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        devices = [register(http, f"board{i}") for i in range(4)]
        by_id = {d["id"]: d for d in devices}
        rollout = start_rollout(http, devices, canary_fraction=0.25)
        assert rollout["state"] == "canary" and rollout["version"] == "1.4.0"
        assert rollout["counts"] == {"offered": 1, "queued": 3}
        (canary,) = canaries(rollout)
        offer = wait_offer(registry_stack, mqtt_client, by_id[canary])
        assert offer == {
            "rollout": rollout["id"],
            "version": "1.4.0",
            "bundle": rollout["bundle_id"],
            "size": offer["size"],
            "allow_downgrade": False,
        }
        assert offer["size"] > 50
        rest = [d for d in devices if d["id"] != canary]
        assert retained_offer(registry_stack, mqtt_client, rest[0]) is None

        finish(registry_stack, rollout, canary)
        now = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert now["state"] == "rolling", now
        assert states(now)[canary] == "confirmed"
        assert retained_offer(registry_stack, mqtt_client, by_id[canary]) is None  # spent
        for device in rest:
            assert wait_offer(registry_stack, mqtt_client, device)["rollout"] == rollout["id"]

        report(
            registry_stack,
            rest[0]["id"],
            {"rollout": rollout["id"], "version": "1.4.0", "state": "downloading", "progress": 30},
        )
        entry = http.get(f"/api/v1/devices/{rest[0]['id']}/update").json()["rollout"]
        assert entry["state"] == "downloading" and entry["progress"] == 30, entry
        for device in rest:
            finish(registry_stack, rollout, device["id"])
        done = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert done["state"] == "completed" and done["counts"] == {"confirmed": 4}, done
        update = http.get(f"/api/v1/devices/{canary}/update").json()
        assert update["running_version"] == "1.4.0"
        assert update["rollout"]["rollout_id"] == rollout["id"]
        assert update["rollout"]["rollout_state"] == "completed"
        assert [r["id"] for r in http.get("/api/v1/rollouts").json()] == [rollout["id"]]


def test_failing_canaries_halt_and_the_rest_is_never_offered(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        devices = [register(http, f"board{i}") for i in range(5)]
        rollout = start_rollout(http, devices, canary_fraction=0.4, max_failure_ratio=0.2)
        first, second = canaries(rollout)
        finish(registry_stack, rollout, first)
        finish(registry_stack, rollout, second, "rolled_back", "ImportError: no module named x")
        halted = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert halted["state"] == "halted", halted
        assert "1 of 2" in halted["halted_reason"], halted
        assert halted["counts"] == {"confirmed": 1, "rolled_back": 1, "queued": 3}
        entry = next(d for d in halted["devices"] if d["device_id"] == second)
        assert entry["error"] == "ImportError: no module named x"
        for device in devices:
            assert retained_offer(registry_stack, mqtt_client, device) is None, device["id"]


def test_failures_while_rolling_halt_and_withdraw_offers_not_taken(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        devices = [register(http, f"board{i}") for i in range(4)]
        by_id = {d["id"]: d for d in devices}
        rollout = start_rollout(http, devices, canary_fraction=0.25, max_failure_ratio=0.3)
        (canary,) = canaries(rollout)
        finish(registry_stack, rollout, canary)
        downloading, failing, untaken = [d["id"] for d in devices if d["id"] != canary]
        base = {"rollout": rollout["id"], "version": "1.4.0"}
        report(registry_stack, downloading, base | {"state": "downloading", "progress": 10})
        report(registry_stack, failing, base | {"state": "failed", "error": "hash of app.py"})
        halted = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert halted["state"] == "halted", halted
        assert states(halted)[untaken] == "offered"
        assert retained_offer(registry_stack, mqtt_client, by_id[untaken]) is None  # withdrawn
        assert retained_offer(registry_stack, mqtt_client, by_id[failing]) is None  # spent
        kept = retained_offer(registry_stack, mqtt_client, by_id[downloading])
        assert kept and kept["rollout"] == rollout["id"]  # it is downloading: it may finish
        finish(registry_stack, rollout, downloading)
        after = http.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert after["state"] == "halted" and states(after)[downloading] == "confirmed"
        assert retained_offer(registry_stack, mqtt_client, by_id[downloading]) is None


def test_cancel_withdraws_the_offers_and_frees_the_devices(registry_stack, mqtt_client):
    with registry_stack.signed_in() as http:
        devices = [register(http, f"board{i}") for i in range(2)]
        rollout = start_rollout(http, devices, canary_fraction=1.0)
        for device in devices:
            wait_offer(registry_stack, mqtt_client, device)
        again = http.post(
            "/api/v1/rollouts",
            json={"bundle_id": rollout["bundle_id"], "devices": [devices[0]["id"]]},
        )
        assert again.status_code == 409 and devices[0]["id"] in again.text, again.text
        cancelled = http.post(f"/api/v1/rollouts/{rollout['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        for device in devices:
            assert retained_offer(registry_stack, mqtt_client, device) is None
        again = http.post(
            "/api/v1/rollouts",
            json={"bundle_id": rollout["bundle_id"], "devices": [devices[0]["id"]]},
        )
        assert again.status_code == 201, again.text


def test_a_report_on_another_rollout_is_ignored(registry_stack):
    with registry_stack.signed_in() as http:
        device = register(http)
        old = start_rollout(http, [device])
        http.post(f"/api/v1/rollouts/{old['id']}/cancel")
        new = start_rollout(http, [device], version="1.5.0")
        report(
            registry_stack,
            device["id"],
            {"rollout": old["id"], "version": "1.4.0", "state": "failed", "error": "late"},
        )
        entry = http.get(f"/api/v1/devices/{device['id']}/update").json()["rollout"]
        assert entry["rollout_id"] == new["id"] and entry["state"] == "offered", entry
        assert states(http.get(f"/api/v1/rollouts/{old['id']}").json()) == {device["id"]: "offered"}
        report(registry_stack, device["id"], {"version": "1.3.2", "state": "running"})
        assert (
            http.get(f"/api/v1/devices/{device['id']}/update").json()["running_version"] == "1.3.2"
        )


def test_another_user_sees_nothing(registry_stack):
    with registry_stack.signed_in() as alice, registry_stack.signed_in() as mallory:
        device = register(alice)
        rollout = start_rollout(alice, [device])
        path = f"/api/v1/rollouts/{rollout['id']}"
        assert mallory.get(path).status_code == 404
        assert mallory.post(f"{path}/cancel").status_code == 404
        assert mallory.get("/api/v1/rollouts").json() == []
        assert mallory.get(f"/api/v1/devices/{device['id']}/update").status_code == 404
        body = {"bundle_id": rollout["bundle_id"], "devices": [device["id"]]}
        assert mallory.post("/api/v1/rollouts", json=body).status_code == 404  # not their bundle
        theirs = uploaded(mallory)
        body = {"bundle_id": theirs["id"], "devices": [device["id"]]}
        answer = mallory.post("/api/v1/rollouts", json=body)  # not their device
        assert answer.status_code == 404 and device["id"] in answer.text, answer.text
        assert alice.get(path).json()["state"] == "canary"


def test_a_tag_selects_your_matching_devices_only(registry_stack, mqtt_client):
    with registry_stack.signed_in() as alice, registry_stack.signed_in() as mallory:
        greenhouse = [register(alice, f"gh{i}") for i in range(3)]
        kitchen = register(alice, "kitchen")
        theirs = register(mallory, "theirs")
        for device, room in [*((d, "greenhouse") for d in greenhouse), (kitchen, "kitchen")]:
            answer = alice.patch(
                f"/api/v1/devices/{device['id']}", json={"metadata": {"room": room}}
            )
            assert answer.status_code == 200, answer.text
        mallory.patch(f"/api/v1/devices/{theirs['id']}", json={"metadata": {"room": "greenhouse"}})
        bundle = uploaded(alice, a_bundle("1.5.0"))

        body = {"bundle_id": bundle["id"], "tag": ["room:greenhouse"], "canary_fraction": 1}
        answer = alice.post("/api/v1/rollouts", json=body)
        assert answer.status_code == 201, answer.text
        rollout = answer.json()
        assert sorted(states(rollout)) == sorted(d["id"] for d in greenhouse)
        assert rollout["counts"] == {"offered": 3}
        assert wait_offer(registry_stack, mqtt_client, greenhouse[0])["version"] == "1.5.0"
        assert retained_offer(registry_stack, mqtt_client, kitchen) is None

        nobody = body | {"tag": ["room:attic"]}
        answer = alice.post("/api/v1/rollouts", json=nobody)
        assert answer.status_code == 404 and "room:attic" in answer.text, answer.text
        both = body | {"tag": ["room:kitchen"], "devices": [kitchen["id"]]}
        assert alice.post("/api/v1/rollouts", json=both).status_code == 422
        # mallory's tagged device is not selected by alice, and alice's not by mallory
        mine = uploaded(mallory)
        answer = mallory.post(
            "/api/v1/rollouts", json={"bundle_id": mine["id"], "tag": ["room:kitchen"]}
        )
        assert answer.status_code == 404, answer.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"devices": []}, "devices"),
        ({"devices": [f"dev-{'a' * 11}{c}" for c in "abcdefghijklmnopqrstuvwxyz" * 39]}, "devices"),
        ({"devices": ["dev-aaaaaaaaaaaa", "dev-aaaaaaaaaaaa"]}, "devices"),
        ({"devices": ["not-a-device"]}, "devices"),
        ({"canary_fraction": 1.5}, "canary_fraction"),
        ({"max_failure_ratio": -0.1}, "max_failure_ratio"),
        ({"bundle_id": "abc"}, "bundle_id"),
        ({"allow_downgrade": "yes"}, "allow_downgrade"),
        ({"when": "now"}, "when"),
        ({"devices": None}, "devices"),
        ({"tag": ["room:kitchen"]}, "one of the two"),
        ({"devices": None, "tag": ["room"]}, "tag"),
        ({"devices": None, "tag": []}, "tag"),
        ({"devices": None, "tag": [f"k{i}:v" for i in range(9)]}, "tag"),
    ],
)
def test_bad_rollouts_are_422(registry_stack, change, named):
    with registry_stack.signed_in() as http:
        body = {"bundle_id": "0" * 64, "devices": ["dev-aaaaaaaaaaaa"]} | change
        answer = http.post("/api/v1/rollouts", json=body)
        assert answer.status_code == 422, answer.text
        assert named in answer.text, answer.text
