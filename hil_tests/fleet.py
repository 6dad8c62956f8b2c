"""What the fleet tests on the rig share (issue 15): a registered device's board folder,
waiting for the API to show a report, a value, or every reading the board stored."""

from __future__ import annotations

import json
import re
import time

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bytecode import compile_for

RIG_MPY = (6, 3)  # the bytecode the rig's interpreter loads (sys.implementation._mpy)


def flash_for(
    backend, tmp_path, name: str, mpy: bool = False, **config_extra
) -> tuple[str, object]:
    """A registered device's board folder: SDK, app and its config.json (`mpy`: as .mpy
    for the rig's bytecode, 6.3, as provision uploads them; `config_extra`: more keys)."""
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
        **config_extra,
    }
    flash = tmp_path / name
    files = firmware_files()
    if mpy:
        files = compile_for(files, RIG_MPY).files
    for board_file in files:
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
    holds one of `fields`, so the points of all of them count the readings. The board
    keeps sampling meanwhile: the API must reach what the console said at the start, and
    never hold more than the console says by then (a reading twice would be more)."""
    wanted = len(published_seqs(rig.console()))
    deadline = time.monotonic() + timeout
    while True:
        got = sum(len(field_values(backend, device_id, field)) for field in fields)
        if got >= wanted:
            time.sleep(0.2)  # the console line is printed before the reading is sent
            stored_by_now = len(published_seqs(rig.console()))
            assert got <= stored_by_now, (
                f"{got} readings in the API, the board stored {stored_by_now}"
            )
            return got
        assert time.monotonic() < deadline, f"{wanted - got} of {wanted} readings never arrived"
        time.sleep(0.5)


# ---- OTA (docs/ota.md) --------------------------------------------------------------------


def upload_bundle(backend, tar: bytes) -> dict:
    """POST /api/v1/bundles (the tar as application/octet-stream); the stored bundle."""
    with backend.stack.client() as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": backend.username, "password": backend.password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
        answer = http.post("/api/v1/bundles", content=tar, headers=headers)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def start_rollout(backend, bundle_id: str, device_ids: list[str], **options) -> dict:
    body = {"bundle_id": bundle_id, "devices": device_ids, "canary_fraction": 1.0, **options}
    answer = backend.api("POST", "/rollouts", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def rollout_entry(backend, rollout_id: str, device_id: str) -> dict:
    rollout = backend.api_get(f"/rollouts/{rollout_id}")
    return next(d for d in rollout["devices"] if d["device_id"] == device_id)


def wait_rollout_state(
    backend, rollout_id: str, device_id: str, states: tuple[str, ...], timeout: float, rig=None
) -> dict:
    deadline = time.monotonic() + timeout
    entry: dict = {}
    while time.monotonic() < deadline:
        entry = rollout_entry(backend, rollout_id, device_id)
        if entry["state"] in states:
            return entry
        time.sleep(0.3)
    console = rig.console()[-4000:] if rig is not None else ""
    raise AssertionError(f"device still {entry.get('state')} after {timeout} s: {entry}\n{console}")


def staged_numbers(console: str) -> dict:
    """The Updater's `staged` line: the download's numbers (of the boot that finished it)."""
    found = re.findall(
        r"staged (\S+): (\d+) files, (\d+) bytes in (\d+) ms, (\d+) chunks \((\d+) bytes\), "
        r"(\d+) requests, live heap (\d+)",
        console,
    )
    assert found, console[-3000:]
    keys = ("files", "bytes", "ms", "chunks", "wire_bytes", "requests", "live_heap")
    return dict(zip(keys, (int(x) for x in found[-1][1:]), strict=True))
