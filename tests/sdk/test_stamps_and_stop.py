"""Issue 14, items 4 and 5, under the real MicroPython interpreter: readings published a
millisecond apart all reach the API of a real backend (none collapse on the (device, ts)
key), and Device.stop() leaves the device offline every time (the DISCONNECT waits for the
retained `offline` to be acknowledged)."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.users import create_user_in
from tests.sdk.board import build_board, device_config, micropython_path, new_device_id
from tests.support.servers import free_port, wait_for
from tests.support.stack import running_stack

BURST = """
import sys, json
import asyncio
from fieldline import Device
config = json.load(open("config.json"))
device = Device("config.json", buffer={"dir": "data"})
async def main():
    device.start()
    for i in range(int(sys.argv[1])):
        device.publish({"n": i})
        await asyncio.sleep_ms(1)
    for _ in range(600):
        if not device.buffer.has_unsent() and not device.session.inflight:
            break
        await asyncio.sleep_ms(50)
    print("sent", device.clock.seq, "unsent", device.buffer.has_unsent())
    await device.stop()
asyncio.run(main())
"""

ONLINE_THEN_STOP = """
import asyncio
from fieldline import Device
device = Device("config.json", buffer={"dir": "data"})
async def main():
    device.start()
    for _ in range(200):
        if device.state == "online":
            break
        await asyncio.sleep_ms(20)
    print("state", device.state)
    await device.stop()
asyncio.run(main())
"""


def run_script(board, script: str, *args: str, timeout: float = 120) -> str:
    (board / "script.py").write_text(script)
    result = subprocess.run(
        [str(micropython_path()), "script.py", *args],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@contextlib.contextmanager
def embedded_backend_and_board(tmp_path):
    """fieldline up on the embedded defaults, a registered device and its board folder."""
    settings = Settings(
        data_dir=tmp_path / "data", http_port=0, mqtt_port=free_port(),
        internal_token=secrets.token_urlsafe(32), storage_batch_seconds=0.1,
    )  # fmt: skip
    with running_stack(settings) as running:
        password = secrets.token_urlsafe(12)
        create_user_in(running.settings, "ada", password)
        with running.client() as api:
            token = api.post(
                "/api/v1/auth/token", data={"username": "ada", "password": password}
            ).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            device = api.post("/api/v1/devices", json={"name": "board"}).json()
            creds = device["mqtt"]
            config = device_config(device["id"], settings.mqtt_port, log_readings=False)
            config["mqtt"].update(username=creds["username"], password=creds["password"])
            yield api, device, build_board(tmp_path / "board", config)


def test_readings_a_millisecond_apart_all_reach_the_api(tmp_path):
    count = 1000
    with embedded_backend_and_board(tmp_path) as (api, device, board):
        output = run_script(board, BURST, str(count))
        assert f"sent {count} unsent False" in output, output

        def stored():
            answer = api.get(
                f"/api/v1/devices/{device['id']}/telemetry",
                params={"fields": "n", "start": "-10m", "limit": str(10 * count)},
            )
            return answer.status_code == 200 and len(answer.json()["fields"]["n"]) >= count

        wait_for(stored, 30, f"{count} readings through the API")
        points = api.get(
            f"/api/v1/devices/{device['id']}/telemetry",
            params={"fields": "n", "start": "-10m", "limit": str(10 * count)},
        ).json()["fields"]["n"]
    assert sorted(value for _ts, value in points) == list(range(count))
    assert len({ts for ts, _ in points}) == count


def retained_status(port: int, device_id: str) -> str | None:
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{device_id}")

    def on_message(_client, _userdata, message):
        got.append(message.payload)
        done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"devices/{device_id}/status", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(3)
    client.loop_stop()
    client.disconnect()
    return got[-1].decode() if got else None


def test_stop_leaves_the_device_offline_every_time(anonymous_mosquitto, tmp_path):
    device_id = new_device_id("stop")
    board = build_board(tmp_path / "board", device_config(device_id, anonymous_mosquitto.port))
    for attempt in range(10):
        output = run_script(board, ONLINE_THEN_STOP, timeout=60)
        assert "state online" in output, output
        status = retained_status(anonymous_mosquitto.port, device_id)
        assert status == "offline", f"stop {attempt + 1} of 10 left the status {status!r}"
        time.sleep(0.05)


def test_stop_leaves_the_device_offline_on_the_embedded_broker(tmp_path):
    with embedded_backend_and_board(tmp_path) as (api, device, board):
        for attempt in range(10):
            output = run_script(board, ONLINE_THEN_STOP, timeout=60)
            assert "state online" in output, output

            def offline():
                answer = api.get(f"/api/v1/devices/{device['id']}/status")
                return answer.status_code == 200 and answer.json()["status"] == "offline"

            wait_for(offline, 10, f"stop {attempt + 1} of 10 to leave the device offline")
