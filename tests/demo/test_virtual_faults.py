"""Virtual devices whose links drop right after they publish lose nothing.

50 devices on one event loop (as in `fieldline simulate`), each reading followed 0-20 ms
later by a dropped connection, against a private Mosquitto; a subscriber of our own
records what the broker routed. This found the SDK sender left running after its link
died (asyncio.wait_for swallowing the cancel on CPython 3.11), which skipped readings
and let a later PUBACK acknowledge them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import paho.mqtt.client as mqtt

from fieldline_backend.simulator.virtual import VirtualDevice, sdk_config
from tests.support.servers import MosquittoInstance, free_port

DEVICES = 50
READINGS = 20


def test_readings_published_just_before_a_dropped_link_all_reach_the_broker(tmp_path):
    broker = MosquittoInstance(tmp_path / "mosquitto", free_port(), project_config=False).start()
    routed: set[int] = set()

    def on_message(client, userdata, message):
        body = json.loads(message.payload)
        routed.update(item["values"]["n"] for item in (body if isinstance(body, list) else [body]))

    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
    watcher.on_message = on_message
    try:
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe("devices/+/telemetry", 1)
        watcher.loop_start()
        time.sleep(0.3)
        devices = asyncio.run(_run(tmp_path, broker.port))
        expected = {k * 1000 + i for k in range(DEVICES) for i in range(READINGS)}
        deadline = time.monotonic() + 10
        while expected - routed and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watcher.loop_stop()
        broker.stop()
    unfinished = [
        (d.device_id, d.sent, d.acknowledged) for d in devices if d.acknowledged != READINGS
    ]
    assert unfinished == [], "(device, sent, acknowledged): not drained within 30 s"
    assert sorted(expected - routed) == [], "acknowledged but never routed by the broker"


async def _run(tmp_path, port: int) -> list[VirtualDevice]:
    devices = [
        VirtualDevice(
            f"dev-{k}",
            f"device {k}",
            sdk_config(f"dev-{k}", {"host": "127.0.0.1", "port": port, "password": "-"},
                       tmp_path / f"dev-{k}"),
        )
        for k in range(DEVICES)
    ]  # fmt: skip

    async def one(k: int, device: VirtualDevice) -> None:
        device.start()
        await asyncio.wait_for(device.first_online.wait(), 20)
        for i in range(READINGS):
            device.publish({"n": k * 1000 + i})
            await asyncio.sleep(random.uniform(0, 0.02))
            device.drop_link()
            await asyncio.sleep(0.3)

    await asyncio.gather(*(one(k, device) for k, device in enumerate(devices)))
    deadline = time.monotonic() + 30
    while any(d.busy or d.buffered for d in devices) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.gather(*(device.stop() for device in devices))
    return devices
