"""Remote configuration on the rig (issue 15, part 1): the firmware app on the ESP32-sized
interpreter at a board's heap, a real backend (PostgreSQL, Mosquitto with the ACL kept
by mqtt_auth). A PUT through the API reaches the running board retained, is applied
without a reboot and reported; a config the board cannot run is rejected whole and
reported with its reason; a power cut keeps the applied version; the board that was off
catches up when it connects; and no reading is lost through any of it."""

from __future__ import annotations

import json
import time

from hil_tests.fleet import (
    config_state,
    field_values,
    flash_for,
    wait_all_stored,
    wait_field,
    wait_reported,
)
from hil_tests.rig import Rig


def test_a_config_change_is_applied_without_reboot_and_reported(live_backend, tmp_path):
    backend = live_backend
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


def test_a_board_that_was_off_catches_up_when_it_connects(live_backend, tmp_path):
    backend = live_backend
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
