"""Remote configuration on the rig (issue 15, part 1): the firmware app on the ESP32-sized
interpreter at a board's heap, a real backend (PostgreSQL, Mosquitto with the ACL kept
by mqtt_auth). A PUT through the API reaches the running board retained, is applied
without a reboot and reported; a config the board cannot run is rejected whole and
reported with its reason; a power cut keeps the applied version; the board that was off
catches up when it connects; and no reading is lost through any of it."""

from __future__ import annotations

import json
import re
import time

import pytest

from fieldline_provision.board_files import firmware_files
from hil_tests.backend import running_backend
from hil_tests.rig import Rig
from tests.support.servers import create_pg_database, drop_pg_database


@pytest.fixture
def backend(tmp_path, pg_admin_url):
    pg_url = create_pg_database(pg_admin_url)
    try:
        with running_backend(tmp_path / "backend", pg_url) as running:
            yield running
    finally:
        drop_pg_database(pg_url)


def flash_for(backend, tmp_path, name: str) -> tuple[str, object]:
    """A registered device's board folder: SDK, app and its config.json."""
    answer = backend.api("POST", "/devices", json={"name": name})
    assert answer.status_code == 201, answer.text
    device = answer.json()
    mqtt = device["mqtt"]
    config = {
        "device_id": device["id"],
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {**mqtt, "keepalive": 5},
        "interval_s": 1,
        "sensors": [{"kind": "simulated", "name": "counter", "mode": "counter"}],
        "backoff": {"base_ms": 200, "cap_ms": 1000, "stable_s": 2},
        "log_readings": True,
    }
    flash = tmp_path / name
    for board_file in firmware_files():
        target = flash / board_file.board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(board_file.data)
    (flash / "config.json").write_text(json.dumps(config))
    return device["id"], flash


def config_state(backend, device_id: str) -> dict:
    return backend.api_get(f"/devices/{device_id}/config")


def wait_reported(backend, device_id: str, version: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = config_state(backend, device_id)
        if state["reported"] and state["reported"]["version"] == version:
            return state
        time.sleep(0.3)
    raise AssertionError(f"no report on version {version} in {timeout} s: {state}")


def field_values(backend, device_id: str, field: str) -> list:
    answer = backend.api_get(f"/devices/{device_id}/telemetry", fields=field, start="-30m")
    return answer["fields"][field]


def wait_field(backend, device_id: str, field: str, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while not (values := field_values(backend, device_id, field)):
        assert time.monotonic() < deadline, f"no {field} reading in {timeout} s"
        time.sleep(0.3)
    return values


def published_seqs(console: str) -> set[tuple[int, int]]:
    """(boot, seq) of every reading the app stored, from its console lines."""
    seqs, boot = set(), None
    for line in console.splitlines():
        if m := re.search(r"fieldline: boot (\d+) device", line):
            boot = int(m.group(1))
        elif m := re.search(r"fieldline: reading seq (\d+)", line):
            seqs.add((boot, int(m.group(1))))
    return seqs


def wait_all_stored(backend, device_id: str, rig, fields: list[str], timeout=30) -> int:
    """Every reading the board's console says it stored is in the API: each reading
    holds one of `fields`, so the points of all of them count the readings."""
    wanted = len(published_seqs(rig.console()))
    deadline = time.monotonic() + timeout
    while True:
        got = sum(len(field_values(backend, device_id, field)) for field in fields)
        if got == wanted:
            return got
        assert got < wanted, f"{got} readings in the API, the board stored {wanted}"
        assert time.monotonic() < deadline, f"{wanted - got} of {wanted} readings never arrived"
        time.sleep(0.5)


def test_a_config_change_is_applied_without_reboot_and_reported(backend, tmp_path):
    device_id, flash = flash_for(backend, tmp_path, "remote-config")
    assert config_state(backend, device_id) == {"desired": None, "reported": None, "pending": False}
    with Rig(flash) as rig:
        wait_field(backend, device_id, "counter")
        change = {"sensors": [{"kind": "simulated", "name": "humidity", "mode": "counter"}]}
        answer = backend.api("PUT", f"/devices/{device_id}/config", json=change)
        assert answer.status_code == 200, answer.text
        assert answer.json()["desired"]["version"] == 1
        state = wait_reported(backend, device_id, 1)
        assert state["reported"]["status"] == "applied" and not state["pending"], state
        wait_field(backend, device_id, "humidity")
        assert rig.boots == 1, "the config was applied by rebooting"

        # The board cannot run a DHT22 here (no driver on the unix port): rejected whole.
        bad = {"interval_s": 2, "sensors": [{"kind": "dht22", "pin": 4}]}
        answer = backend.api("PUT", f"/devices/{device_id}/config", json=bad)
        assert answer.status_code == 200, answer.text
        state = wait_reported(backend, device_id, 2)
        assert state["reported"]["status"] == "rejected", state
        assert "dht22" in state["reported"]["error"], state
        assert state["pending"] is False  # reported on: rejected, not waiting
        seen = len(field_values(backend, device_id, "humidity"))
        time.sleep(2.5)  # still the old config, every second (not every 2)
        assert len(field_values(backend, device_id, "humidity")) >= seen + 2

        # Put right: only the interval changes; the sensors of version 1 come back.
        fix = {"interval_s": 1, "sensors": change["sensors"]}
        assert backend.api("PUT", f"/devices/{device_id}/config", json=fix).status_code == 200
        state = wait_reported(backend, device_id, 3)
        assert state["reported"]["status"] == "applied", state

        rig.press_reset()  # a power cut: the applied version must survive it
        assert rig.wait_for_console("(config version 3)", 30), rig.console()[-2000:]
        wait_field(backend, device_id, "humidity")
        time.sleep(2)
        count = wait_all_stored(backend, device_id, rig, ["counter", "humidity"])
    assert count > 5 and rig.boots == 2


def test_a_board_that_was_off_catches_up_when_it_connects(backend, tmp_path):
    device_id, flash = flash_for(backend, tmp_path, "catch-up")
    change = {"interval_s": 1, "sensors": [{"kind": "simulated", "name": "soil"}]}
    answer = backend.api("PUT", f"/devices/{device_id}/config", json=change)
    assert answer.status_code == 200 and answer.json()["pending"] is True, answer.text
    answer = backend.api("PUT", f"/devices/{device_id}/config", json={"app": {"greeting": "hi"}})
    desired = answer.json()["desired"]
    assert desired["version"] == 2 and desired["config"]["sensors"] == change["sensors"]
    with Rig(flash) as rig:  # first boot after both changes: version 2 only, whole
        state = wait_reported(backend, device_id, 2)
        assert state["reported"]["status"] == "applied" and not state["pending"], state
        wait_field(backend, device_id, "soil")
        kept = json.loads((flash / "fieldline_data/remote_config.json").read_text())
        assert kept == {"version": 2, "config": desired["config"]}
        assert wait_all_stored(backend, device_id, rig, ["soil", "counter"]) > 0
