"""Commands on the rig (issue 15, part 2): the firmware app on the ESP32-sized
interpreter at a board's heap, a real backend (PostgreSQL, Mosquitto with the ACL kept
by mqtt_auth). A command sent through the API is taken, run and answered; its result is
in the API; `reboot` reboots the board after answering; a command the firmware does not
know fails with the reason; one sent to a board that is off expires; and every reading
the board stored through all of it is in the API."""

from __future__ import annotations

import time

from hil_tests.fleet import flash_for, wait_all_stored, wait_field
from hil_tests.rig import Rig


def send(backend, device_id: str, name: str, **body) -> dict:
    answer = backend.api("POST", f"/devices/{device_id}/commands", json={"name": name, **body})
    assert answer.status_code == 202, answer.text
    command = answer.json()
    assert command["status"] == "pending"
    return command


def wait_final(backend, device_id: str, command_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = backend.api_get(f"/devices/{device_id}/commands/{command_id}")
        if command["status"] in ("succeeded", "failed", "expired"):
            return command
        time.sleep(0.2)
    raise AssertionError(f"command {command_id} still {command['status']} after {timeout} s")


def test_commands_are_run_once_and_answered(live_backend, tmp_path):
    backend = live_backend
    device_id, flash = flash_for(backend, tmp_path, "commanded")
    expired = send(backend, device_id, "ping", ttl_s=1)  # the board is still off
    time.sleep(1.5)
    assert wait_final(backend, device_id, expired["id"])["status"] == "expired"
    with Rig(flash) as rig:
        wait_field(backend, device_id, "counter")
        ping = wait_final(backend, device_id, send(backend, device_id, "ping")["id"])
        assert ping["status"] == "succeeded" and ping["result"]["boot"] >= 1, ping
        assert ping["delivered_at"] and ping["finished_at"]

        sample = wait_final(backend, device_id, send(backend, device_id, "sample")["id"])
        assert sample["status"] == "succeeded", sample
        taken = sample["result"]["values"]["counter"]
        deadline = time.monotonic() + 20  # the reading it took is stored like any other
        while taken not in [v for _, v in wait_field(backend, device_id, "counter")]:
            assert time.monotonic() < deadline, f"the sampled counter {taken} never arrived"
            time.sleep(0.3)

        unknown = wait_final(backend, device_id, send(backend, device_id, "open_valve")["id"])
        assert unknown["status"] == "failed" and "unknown command" in unknown["error"], unknown

        reboot = wait_final(backend, device_id, send(backend, device_id, "reboot")["id"])
        assert reboot["status"] == "succeeded", reboot
        assert rig.wait_for_console("rebooting (command)", 10)
        deadline = time.monotonic() + 30
        while rig.boots < 2:
            assert time.monotonic() < deadline, rig.console()[-2000:]
            time.sleep(0.2)
        assert rig.wait_for_console("fieldline: boot 2 device", 30), rig.console()[-2000:]
        after = wait_final(backend, device_id, send(backend, device_id, "ping")["id"])
        assert after["result"]["boot"] == ping["result"]["boot"] + 1, after
        listed = backend.api_get(f"/devices/{device_id}/commands")
        assert [c["name"] for c in listed] == [
            "ping",
            "reboot",
            "open_valve",
            "sample",
            "ping",
            "ping",
        ]
        time.sleep(1)
        assert wait_all_stored(backend, device_id, rig, ["counter"]) > 3
