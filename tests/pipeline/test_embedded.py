"""The embedded path's own guarantees (amqtt + local queue + SQLite series):

- a telemetry message is in the durable local queue before its PUBACK goes out (the
  capture plugin runs before amqtt's QoS 1 flow, which waits for the group commit that
  holds the message; ingestor/embedded.py), one at a time and many in flight at once;
- the whole single process SIGKILLed while readings flow, then started again: every
  reading the broker acknowledged is stored exactly once.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading

import httpx
import paho.mqtt.client as mqtt
import pytest

from fieldline_backend.infra.broker import backend_credentials
from fieldline_backend.infra.queue.local import LocalQueue
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore
from tests.pipeline.support import Device, Flow, reading
from tests.support.servers import free_port, wait_for


@pytest.mark.parametrize("pipeline_kind", ["embedded"])
def test_each_message_is_in_the_local_queue_before_its_puback(start_pipeline):
    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:  # no storage: nothing drains
        device = pipeline.account("owner-e", "puback")
        queue = LocalQueue(pipeline.settings.data_dir / "queue.db")
        for seq in range(200):
            device.publish_all([reading(seq, ts=1_764_000_000_000 + seq)])
            # The PUBACK is here; the message must already be durable.
            assert queue.depth() == seq + 1, f"PUBACK of reading {seq} came before its capture"
        queue.close()
        device.close()


@pytest.mark.parametrize("pipeline_kind", ["embedded"])
def test_many_in_flight_each_puback_comes_after_its_commit(start_pipeline):
    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:  # no storage: nothing drains
        devices = [pipeline.account("owner-e", f"burst{i}") for i in range(5)]
        queue = LocalQueue(pipeline.settings.data_dir / "queue.db")
        lock = threading.Lock()
        acked = 0
        early: list[tuple[int, int]] = []

        def on_puback(client, userdata, mid, reason, properties):
            nonlocal acked
            with lock:  # the devices' network threads
                acked += 1
                depth = queue.depth()
                if depth < acked:  # more PUBACKs than committed messages
                    early.append((acked, depth))

        for device in devices:
            device.client.on_publish = on_puback
        for seq in range(200):  # 1,000 in flight, up to 200 per device
            for n, device in enumerate(devices):
                device.publish(reading(seq, ts=1_764_000_000_000 + seq * 10 + n))
        wait_for(lambda: acked == 1000, 60, "every PUBACK")
        assert early == [], f"PUBACKs ahead of their commit: {early[:5]}"
        assert queue.depth() == 1000
        queue.close()
        for device in devices:
            device.close()


class Subscriber:
    """A backend account's paho client that records what it receives."""

    def __init__(self, pipeline):
        username, password = backend_credentials(pipeline.settings)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{secrets.token_hex(4)}"
        )
        self.client.username_pw_set(username, password)
        self.received: list[tuple[str, bytes, bool]] = []
        self.acks = 0
        self.client.on_message = lambda c, u, m: self.received.append(
            (m.topic, m.payload, m.retain)
        )
        self.client.on_subscribe = self.client.on_unsubscribe = self._acked
        self.client.connect("127.0.0.1", pipeline.settings.mqtt_port, keepalive=30)
        self.client.loop_start()

    def _acked(self, *_args) -> None:
        self.acks += 1

    def subscribe(self, topic_filter: str) -> None:
        before = self.acks
        self.client.subscribe(topic_filter, qos=1)
        wait_for(lambda: self.acks > before, 15, f"SUBACK for {topic_filter}")

    def unsubscribe(self, topic_filter: str) -> None:
        before = self.acks
        self.client.unsubscribe(topic_filter)
        wait_for(lambda: self.acks > before, 15, f"UNSUBACK for {topic_filter}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("pipeline_kind", ["embedded"])
def test_telemetry_reaches_subscribers_while_the_capture_acks_the_unobserved(start_pipeline):
    """The capture PUBACKs telemetry no subscription could receive without amqtt's
    delivery; a subscription made (or dropped) at any time must still be obeyed, and
    every message is captured either way."""
    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:  # no storage: nothing drains
        device = pipeline.account("owner-s", "watched")
        queue = LocalQueue(pipeline.settings.data_dir / "queue.db")
        watcher = Subscriber(pipeline)
        batch = iter(range(10_000))

        def send(n: int) -> list[bytes]:
            payloads = [reading(next(batch)) for _ in range(n)]
            device.publish_all(payloads)
            return [json.dumps(p).encode() for p in payloads]

        send(10)  # no subscriber yet: acked by the capture
        assert watcher.received == []

        watcher.subscribe("devices/+/telemetry")  # a wildcard filter
        seen = send(10)
        wait_for(lambda: len(watcher.received) == 10, 15, "the wildcard subscriber's 10")
        assert [body for _, body, _ in watcher.received] == seen

        watcher.unsubscribe("devices/+/telemetry")
        send(10)
        watcher.subscribe(device.topic)  # an exact filter
        seen = send(5)
        wait_for(lambda: len(watcher.received) == 15, 15, "the exact subscriber's 5")
        assert [body for _, body, _ in watcher.received[10:]] == seen
        watcher.unsubscribe(device.topic)

        # Retained: kept by the broker whoever subscribes (none now), and captured.
        retained = json.dumps(reading(99)).encode()
        device.client.publish(device.topic, retained, qos=1, retain=True).wait_for_publish(15)
        later = Subscriber(pipeline)
        later.subscribe(device.topic)
        wait_for(lambda: later.received, 15, "the retained reading")
        assert later.received == [(device.topic, retained, True)]

        assert queue.depth() == 36, "a message acked without its capture"
        assert len(watcher.received) == 15, "a message delivered after its unsubscribe"
        for client in (watcher, later, device):
            client.close()
        queue.close()


ALL_IN_ONE = (
    "import sys\n"
    "from fieldline_backend.common.settings import load_settings\n"
    "from fieldline_backend.runner import run_services\n"
    "run_services(load_settings(), sys.argv[1].split(','), banner=False)\n"
)


class OneProcess:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.env = {
            **os.environ,
            "FIELDLINE_DATA_DIR": str(tmp_path / "data"),
            "FIELDLINE_HTTP_PORT": str(self.port),
            "FIELDLINE_MQTT_PORT": str(free_port()),
            "FIELDLINE_INTERNAL_TOKEN": secrets.token_urlsafe(24),
            "FIELDLINE_STORAGE_BATCH_SECONDS": "0.1",
        }
        self.log = tmp_path / "process.log"
        self.process = None

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [sys.executable, "-c", ALL_IN_ONE, "mqtt_auth,ingestor,storage"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                return self.process.poll() is not None

        wait_for(up, 60, "the all-in-one process")
        assert self.process.poll() is None, self.log.read_text()[-3000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


@pytest.mark.slow
def test_whole_embedded_process_sigkilled_while_readings_flow(tmp_path):
    node = OneProcess(tmp_path)
    node.start()
    try:
        device_id = f"dev-{secrets.token_hex(6)}"
        answer = httpx.post(
            f"http://127.0.0.1:{node.port}/internal/mqtt-accounts",
            headers={"X-Fieldline-Internal": node.env["FIELDLINE_INTERNAL_TOKEN"]},
            json={"device_id": device_id, "owner_id": "o", "name": "crash", "metadata": {}},
        )
        assert answer.status_code == 201, answer.text
        device = Device("127.0.0.1", int(node.env["FIELDLINE_MQTT_PORT"]), answer.json(), device_id)
        flow = Flow([device], per_second=150).start()
        store = SQLiteStore(tmp_path / "data" / "timeseries.db")
        wait_for(lambda: len(store.marks(device_id, 0, 2**53)) > 100, 30, "readings stored")
        node.kill()
        flow.run_for(1)
        node.start()
        flow.run_for(2)
        sent = flow.stop(timeout=60)
        wait_for(
            lambda: len(store.marks(device_id, 0, 2**53)) == sent[device_id],
            60,
            f"{sent[device_id]} readings stored",
        )
        flow.run_for(1)
        assert len(store.marks(device_id, 0, 2**53)) == sent[device_id]
        store.close()
        device.close()
    finally:
        node.stop()


@pytest.mark.parametrize("pipeline_kind", ["embedded"])
def test_a_message_the_queue_cannot_keep_gets_no_puback_and_comes_again(start_pipeline):
    import sqlite3
    import time

    with start_pipeline(("mqtt_auth", "ingestor")) as pipeline:
        device = pipeline.account("owner-e", "disk-full")
        path = pipeline.settings.data_dir / "queue.db"
        blocker = sqlite3.connect(path)
        blocker.execute("BEGIN EXCLUSIVE")  # the queue file cannot take anything now
        info = device.publish(reading(1, ts=1_764_000_000_001))
        time.sleep(4)  # the capture gives up after 2 s and drops the connection
        assert not info._published, "a PUBACK went out for a message nobody kept"
        blocker.rollback()
        blocker.close()
        # paho reconnects and sends the message again; now it is kept and acknowledged.
        wait_for(lambda: info._published, 30, "the PUBACK after the retry")
        queue = LocalQueue(path)
        assert queue.depth() == 1
        queue.close()
        device.close()
