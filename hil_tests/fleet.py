"""What the fleet tests on the rig share (issue 15): a registered device's board folder,
waiting for the API to show a report, a value, or every reading the board stored."""

from __future__ import annotations

import json
import re
import time

from fieldline_provision.board_files import firmware_files


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
