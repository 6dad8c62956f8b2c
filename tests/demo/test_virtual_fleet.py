"""Virtual devices (`fieldline simulate`, `fieldline demo`) take config and commands
through the SDK's own code (issue 15, part 4), on both stacks: 20 devices on one event
loop; a config change reaches all of them and their sampling interval follows it; a
config a virtual device cannot run is rejected and reported; ping and reboot are
answered, and a reboot reconnects the device."""

from __future__ import annotations

import asyncio
import time

from fieldline_backend.simulator.virtual import VirtualDevice, sdk_config
from tests.pipeline.conftest import ALL

DEVICES = 20


def states(http, ids: list[str]) -> list[dict]:
    return [http.get(f"/api/v1/devices/{i}/config").json() for i in ids]


async def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.3)


async def _fleet_run(pipeline, http, tmp_path) -> None:
    registered = [pipeline.register(http, f"virtual {k}") for k in range(DEVICES)]
    ids = [d["id"] for d in registered]
    devices = [
        VirtualDevice(d["id"], d["name"], sdk_config(d["id"], d["mqtt"], tmp_path / d["id"]))
        for d in registered
    ]
    for device in devices:
        device.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(d.first_online.wait() for d in devices)), 30)
        for device_id in ids:
            answer = http.put(f"/api/v1/devices/{device_id}/config", json={"interval_s": 2})
            assert answer.status_code == 200, answer.text

        def all_applied(version: int, status: str) -> bool:
            return all(
                s["reported"] and s["reported"]["version"] == version
                and s["reported"]["status"] == status
                for s in states(http, ids)
            )  # fmt: skip

        await _wait(lambda: all_applied(1, "applied"), 30, "every device applied version 1")
        assert all(device.interval_s == 2.0 for device in devices)

        bad = {"sensors": [{"kind": "bme280", "sda": 21, "scl": 22}]}
        assert http.put(f"/api/v1/devices/{ids[0]}/config", json=bad).status_code == 200
        await _wait(
            lambda: states(http, ids[:1])[0]["reported"]["version"] == 2, 30, "a report on v2"
        )
        report = states(http, ids[:1])[0]["reported"]
        assert report["status"] == "rejected" and "bme280" in report["error"], report
        assert devices[0].interval_s == 2.0  # the old config stays

        path = f"/api/v1/devices/{ids[1]}/commands"
        ping = http.post(path, json={"name": "ping"}).json()
        reboot = http.post(path, json={"name": "reboot"}).json()

        def finished(command) -> bool:
            return http.get(f"{path}/{command['id']}").json()["status"] == "succeeded"

        await _wait(lambda: finished(ping) and finished(reboot), 30, "ping and reboot answered")
        await _wait(lambda: devices[1].times_online >= 2, 30, "the rebooted device back online")
    finally:
        await asyncio.gather(*(device.stop() for device in devices))


def test_virtual_devices_take_config_and_commands(start_pipeline, tmp_path):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as http:
        asyncio.run(_fleet_run(pipeline, http, tmp_path))
