"""OTA updates on the rig (issue 15, part 3; docs/ota.md): the firmware app as provision
uploads it (.mpy, bytecode 6.3) on the ESP32-sized interpreter at a board's heap, a real
backend (PostgreSQL, Mosquitto with the project's ACL, the devices service with its
bundle server and rollouts). A bundle above the board's version is rolled out, fetched
over MQTT, staged, switched by the loader and confirmed; a bundle whose app raises at
import is rolled back by the board itself; a power cut halfway through the download
resumes where flash got to; and every reading the board stored through all of it is in
the API. Prints the numbers docs/ota.md quotes."""

from __future__ import annotations

import json
import time

from fieldline_provision.board_files import firmware_files
from fieldline_provision.bundle import NEVER_IN_A_BUNDLE, make_bundle
from fieldline_provision.bytecode import compile_for
from hil_tests.fleet import (
    RIG_MPY,
    flash_for,
    staged_numbers,
    start_rollout,
    upload_bundle,
    wait_all_stored,
    wait_field,
    wait_rollout_state,
)
from hil_tests.rig import Rig

OTA = {"ota": {"trial_s": 30, "trial_boots": 3}}


def rig_bundle(version: str, replace: dict[str, bytes] | None = None):
    """The SDK and app as .mpy for the rig, as `fieldline bundle --mpy 6.3` builds them;
    `replace`: board path -> bytes (a source file replaces the .mpy of its module)."""
    files = {
        f.board_path: f.data
        for f in compile_for(firmware_files(), RIG_MPY).files
        if f.board_path not in NEVER_IN_A_BUNDLE and f.board_path != "version.json"
    }
    for path, data in (replace or {}).items():
        files.pop(path[:-3] + ".mpy", None)
        files[path] = data
    return make_bundle(version, "6.3", sorted(files.items()))


def running_version(backend, device_id: str) -> str | None:
    return backend.api_get(f"/devices/{device_id}/update")["running_version"]


def wait_running_version(backend, device_id: str, version: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while running_version(backend, device_id) != version:
        assert time.monotonic() < deadline, backend.api_get(f"/devices/{device_id}/update")
        time.sleep(0.3)


def board_version(flash) -> str:
    return json.loads((flash / "version.json").read_text())["version"]


def test_an_update_is_rolled_out_and_confirmed(live_backend, tmp_path):
    backend = live_backend
    device_id, flash = flash_for(backend, tmp_path, "ota-confirm", mpy=True, **OTA)
    old = board_version(flash)
    bundle = rig_bundle("9.1.0")
    with Rig(flash) as rig:
        wait_field(backend, device_id, "counter")
        wait_running_version(backend, device_id, old)  # `running` after the connect
        stored = upload_bundle(backend, bundle.to_tar())
        assert stored["id"] == bundle.id and stored["version"] == "9.1.0", stored
        started = time.monotonic()
        rollout = start_rollout(backend, bundle.id, [device_id])
        entry = wait_rollout_state(backend, rollout["id"], device_id, ("rebooting",), 180, rig)
        entry = wait_rollout_state(
            backend, rollout["id"], device_id, ("confirmed", "rolled_back", "failed"), 90, rig
        )
        took = time.monotonic() - started
        assert entry["state"] == "confirmed", entry
        assert rig.wait_for_console("on trial (boot 1)", 5), rig.console()[-3000:]
        wait_running_version(backend, device_id, "9.1.0")
        assert board_version(flash) == "9.1.0"
        assert not (flash / "fieldline_data/ota/old").exists()
        numbers = staged_numbers(rig.console())
        time.sleep(2)
        count = wait_all_stored(backend, device_id, rig, ["counter"], timeout=60)
    assert rig.boots == 2
    print(
        f"\nOTA on the rig: {len(bundle.files)} files, {bundle.size} bytes (.mpy), tar "
        f"{len(bundle.to_tar())} bytes; rollout -> confirmed in {took:.1f} s (download "
        f"{numbers['ms'] / 1000:.1f} s); {numbers['chunks']} chunks, {numbers['wire_bytes']} "
        f"chunk payload bytes, {numbers['requests']} requests; live heap during the download "
        f"{numbers['live_heap']} bytes (gc.mem_alloc after a collection, at each 10%); "
        f"{count} readings, all stored"
    )
    assert numbers["live_heap"] < 111936


def test_an_app_that_raises_at_import_is_rolled_back_by_the_board(live_backend, tmp_path):
    backend = live_backend
    device_id, flash = flash_for(backend, tmp_path, "ota-rollback", mpy=True, **OTA)
    old = board_version(flash)
    broken = b'raise RuntimeError("broken on purpose")\n'
    bundle = rig_bundle("9.2.0", {"app.py": broken})
    with Rig(flash) as rig:
        wait_field(backend, device_id, "counter")
        upload_bundle(backend, bundle.to_tar())
        rollout = start_rollout(backend, bundle.id, [device_id])
        entry = wait_rollout_state(
            backend, rollout["id"], device_id, ("confirmed", "rolled_back", "failed"), 240, rig
        )
        assert entry["state"] == "rolled_back", entry
        assert "RuntimeError: broken on purpose" in entry["error"], entry
        assert board_version(flash) == old and not (flash / "app.py").exists()
        assert (flash / "app.mpy").exists()
        seen = len(wait_field(backend, device_id, "counter"))
        time.sleep(3)  # the old version keeps sending
        assert len(wait_field(backend, device_id, "counter")) >= seen + 2
        wait_running_version(backend, device_id, old)
        assert wait_all_stored(backend, device_id, rig, ["counter"], timeout=60) > 3


def test_a_power_cut_halfway_through_the_download_resumes(live_backend, tmp_path):
    backend = live_backend
    device_id, flash = flash_for(backend, tmp_path, "ota-cut", mpy=True, **OTA)
    bundle = rig_bundle("9.3.0")
    new = flash / "fieldline_data/ota/new"
    with Rig(flash) as rig:
        wait_field(backend, device_id, "counter")
        upload_bundle(backend, bundle.to_tar())
        rollout = start_rollout(backend, bundle.id, [device_id])
        deadline = time.monotonic() + 120
        while sum(f.stat().st_size for f in new.rglob("*") if f.is_file()) < bundle.size / 2:
            assert time.monotonic() < deadline, rig.console()[-3000:]
            time.sleep(0.02)
        got = sum(f.stat().st_size for f in new.rglob("*") if f.is_file())
        rig.press_reset()  # the power cut: the process is killed, the rig boots it again
        assert rig.wait_for_console("resumed", 60), rig.console()[-3000:]
        entry = wait_rollout_state(
            backend, rollout["id"], device_id, ("confirmed", "rolled_back", "failed"), 180, rig
        )
        assert entry["state"] == "confirmed", entry
        numbers = staged_numbers(rig.console())  # of the boot that finished the download
        whole = sum(-(-len(f.data) // 1024) for f in bundle.files) + -(
            -len(bundle.manifest) // 1024
        )
        # not from 0: what flash had was kept (at most a partial chunk per file asked again)
        assert numbers["requests"] < whole, (numbers, whole, got)
        assert numbers["requests"] <= whole - got // 1024 + len(bundle.files) + 1, numbers
        assert board_version(flash) == "9.3.0"
        time.sleep(2)
        count = wait_all_stored(backend, device_id, rig, ["counter"], timeout=60)
    print(
        f"\npower cut with {got} of {bundle.size} bytes on flash: the next boot asked for "
        f"{numbers['requests']} chunks of {whole}; confirmed; {count} readings, all stored"
    )
