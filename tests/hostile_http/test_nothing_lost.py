"""Issue 13, "nothing valid is lost while it happens": a device keeps publishing through
a slowloris on the HTTP port and an oversized PUBLISH from another device's login, and
every one of its readings is stored once, on a real `fieldline up`."""

from __future__ import annotations

import json
import socket
import time

import httpx
import paho.mqtt.client as mqtt
import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.users import create_user_in
from tests.hostile_http.attacker import attack
from tests.hostile_http.process import FieldlineUp
from tests.support.servers import wait_for

READINGS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    up = FieldlineUp(
        tmp_path_factory.mktemp("nothing-lost") / "data",
        nofile=(1024, 1500),
        http_max_connections=200,
        http_header_timeout=1.5,
    )
    yield up
    up.stop()


def signed_in(server: FieldlineUp) -> httpx.Client:
    create_user_in(Settings(data_dir=server.data_dir), "ada", "a long enough password")
    answer = httpx.post(
        server.base_url + "/api/v1/auth/token",
        data={"username": "ada", "password": "a long enough password"},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def connected(server: FieldlineUp, mqtt_account: dict) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=mqtt_account["client_id"], clean_session=False
    )
    client.username_pw_set(mqtt_account["username"], mqtt_account["password"])
    client.connect("127.0.0.1", server.mqtt_port, keepalive=30)
    client.loop_start()
    wait_for(client.is_connected, 10, "the device to connect")
    return client


def oversized_publish(port: int, account: dict) -> bool:
    """CONNECT as `account`, then announce a 50 MB PUBLISH; True when the broker hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        cid, user, pw = (account[k].encode() for k in ("client_id", "username", "password"))
        variable = b"\x00\x04MQTT\x04\xc2\x00\x3c"
        body = variable + b"".join(len(f).to_bytes(2, "big") + f for f in (cid, user, pw))
        sock.sendall(bytes([0x10, len(body)]) + body)
        assert sock.recv(4)[:2] == b"\x20\x02", "the attacker's CONNECT was refused"
        size = 50 * 1024 * 1024
        length = bytearray()
        while True:  # MQTT's variable-length remaining length
            byte, size = size % 128, size // 128
            length.append(byte | (0x80 if size else 0))
            if not size:
                break
        sock.sendall(bytes([0x32]) + bytes(length) + b"\x00\x05topic" + b"x" * 16384)
        try:
            return sock.recv(10) == b""
        except TimeoutError:  # still open, waiting for the rest of the 50 MB
            return False
        except OSError:
            return True


def test_a_device_loses_no_reading_through_a_slowloris_and_an_oversized_publish(server):
    with signed_in(server) as api:
        device = api.post("/devices", json={"name": "steady"})
        assert device.status_code == 201, device.text
        attacker = api.post("/devices", json={"name": "hostile"})
        assert attacker.status_code == 201, attacker.text
        device_id = device.json()["id"]
        client = connected(server, device.json()["mqtt"])
        topic = f"devices/{device_id}/telemetry"
        base = int(time.time() * 1000) - 60_000
        try:
            with attack(server.http_port, total=2000, per_second=1000, seconds=4):
                assert oversized_publish(server.mqtt_port, attacker.json()["mqtt"]), (
                    "expected the broker to close a connection announcing a 50 MB PUBLISH"
                )
                infos = []
                for seq in range(READINGS):
                    payload = {"ts": base + seq, "seq": seq, "boot": 1, "values": {"n": seq}}
                    infos.append(client.publish(topic, json.dumps(payload), qos=1))
                    time.sleep(0.005)
                for info in infos:
                    info.wait_for_publish(10)
        finally:
            client.loop_stop()
            client.disconnect()

        def stored() -> tuple[bool, list]:
            answer = api.get(
                f"/devices/{device_id}/telemetry", params={"fields": "n", "start": base}
            )
            points = answer.json()["fields"].get("n", []) if answer.status_code == 200 else []
            return len(points) >= READINGS, points

        wait_for(lambda: stored()[0], 30, f"{READINGS} readings stored")
        points = stored()[1]
        assert [p[1] for p in points] == list(range(READINGS)), (
            f"expected readings 0..{READINGS - 1} stored once each, got {len(points)}: "
            f"{[p[1] for p in points][:20]}..."
        )
