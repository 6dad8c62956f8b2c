"""Issue 2, "Done when" 4, 7 and 8 on both stacks, through the public API: rotation,
disabling and deleting close the device's open connection within 5 s and refuse it
after; a fresh broker admits exactly the enabled devices once mqtt_auth reconciled it;
no password ever reaches the logs."""

from __future__ import annotations

import logging
import time

import pytest

from fieldline_backend.common.logs import JsonFormatter
from tests.support.servers import wait_for

CLOSE_WITHIN = 5.0  # seconds, issue 2 case 4


def register(api, name: str = "probe") -> dict:
    answer = api.post("/api/v1/devices", json={"name": name, "metadata": {"room": "lab"}})
    assert answer.status_code == 201, answer.text
    return answer.json()


def device_client(stack, mqtt_client, mqtt: dict, password: str | None = None):
    return mqtt_client(stack, mqtt["client_id"], mqtt["username"], password or mqtt["password"])


def test_rotation_closes_the_open_connection_and_only_the_new_password_works(
    registry_stack, mqtt_client
):
    with registry_stack.signed_in() as api:
        device = register(api)
        old = device["mqtt"]
        connection = device_client(registry_stack, mqtt_client, old)
        assert connection.connect()

        answer = api.post(f"/api/v1/devices/{device['id']}/credentials/rotate")
        assert answer.status_code == 200, answer.text
        new = answer.json()["mqtt"]
        assert new["password"] != old["password"]

    assert connection.wait_disconnected(CLOSE_WITHIN) <= CLOSE_WITHIN
    assert not device_client(registry_stack, mqtt_client, old).connect(), "old password works"
    assert device_client(registry_stack, mqtt_client, new).connect(), "new password refused"


def test_disabled_device_is_disconnected_refused_and_readmitted_when_enabled(
    registry_stack, mqtt_client
):
    with registry_stack.signed_in() as api:
        device = register(api)
        credentials = device["mqtt"]
        connection = device_client(registry_stack, mqtt_client, credentials)
        assert connection.connect()

        answer = api.patch(f"/api/v1/devices/{device['id']}", json={"enabled": False})
        assert answer.status_code == 200, answer.text
        assert connection.wait_disconnected(CLOSE_WITHIN) <= CLOSE_WITHIN
        assert not device_client(registry_stack, mqtt_client, credentials).connect()

        answer = api.patch(f"/api/v1/devices/{device['id']}", json={"enabled": True})
        assert answer.status_code == 200, answer.text
        assert device_client(registry_stack, mqtt_client, credentials).connect()


def test_deleted_device_is_disconnected_and_refused(registry_stack, mqtt_client):
    with registry_stack.signed_in() as api:
        device = register(api)
        credentials = device["mqtt"]
        connection = device_client(registry_stack, mqtt_client, credentials)
        assert connection.connect()
        assert api.delete(f"/api/v1/devices/{device['id']}").status_code == 204
    assert connection.wait_disconnected(CLOSE_WITHIN) <= CLOSE_WITHIN
    assert not device_client(registry_stack, mqtt_client, credentials).connect()
    with registry_stack.running.internal_client() as internal:
        assert internal.get(f"/internal/devices/by-client/{device['id']}").status_code == 404


def test_fresh_broker_after_reconciliation_admits_enabled_devices_only(start_stack, mqtt_client):
    with start_stack(("gateway", "devices", "mqtt_auth")) as first, first.signed_in() as api:
        devices = [register(api, f"sensor {n}") for n in range(3)]
        disabled = devices[1]
        answer = api.patch(f"/api/v1/devices/{disabled['id']}", json={"enabled": False})
        assert answer.status_code == 200, answer.text

    # A new broker with empty state (real: a new Mosquitto with empty password and ACL
    # files; embedded: a new amqtt on a new port), then mqtt_auth starts and reconciles.
    with start_stack(("mqtt_auth",), fresh_broker=True) as second:
        if second.mosquitto is not None:
            assert second.mosquitto is not first.mosquitto
        for device in devices:
            client = device_client(second, mqtt_client, device["mqtt"])
            admitted = client.connect()
            if device is disabled:
                assert not admitted, "a disabled device was admitted by the fresh broker"
            else:
                assert admitted, f"enabled device {device['id']} refused: {client.connack}"
                client.close()


def test_logs_never_contain_a_password(registry_stack, mqtt_client, caplog):
    caplog.set_level(logging.DEBUG)
    secrets_seen = []
    with registry_stack.signed_in() as api:
        device = register(api)
        secrets_seen.append(device["mqtt"]["password"])
        client = device_client(registry_stack, mqtt_client, device["mqtt"])
        assert client.connect()
        client.publish(f"devices/{device['id']}/telemetry", b'{"seq": 1, "values": {}}')
        wrong = device_client(registry_stack, mqtt_client, device["mqtt"], "not-" + "the-password")
        assert not wrong.connect()
        rotated = api.post(f"/api/v1/devices/{device['id']}/credentials/rotate")
        assert rotated.status_code == 200
        secrets_seen.append(rotated.json()["mqtt"]["password"])
    secrets_seen.append(registry_stack.backend_credentials[1])
    client.wait_disconnected(CLOSE_WITHIN)

    assert caplog.records, "nothing was logged: the test would prove nothing"
    formatter = JsonFormatter()
    for record in caplog.records:
        text = formatter.format(record) + " " + record.getMessage()
        for secret in secrets_seen:
            assert secret not in text, f"a password leaked into the log: {record.name}"


def test_the_api_answer_is_all_a_device_needs_to_publish(registry_stack, mqtt_client):
    from types import SimpleNamespace

    username, password = registry_stack.backend_credentials
    backend = mqtt_client(registry_stack, "ingestor-api-test", username, password)
    assert backend.connect()
    assert backend.subscribe("devices/+/telemetry") == 1
    with registry_stack.signed_in() as api:
        mqtt = register(api)["mqtt"]
    # Connect exactly where and as the API said.
    where = SimpleNamespace(mqtt_address=(mqtt["host"], mqtt["port"]))
    device = mqtt_client(where, mqtt["client_id"], mqtt["username"], mqtt["password"])
    assert mqtt["tls"] is False and device.connect(), device.connack
    topic = f"devices/{mqtt['client_id']}/telemetry"
    device.publish(topic, b'{"seq": 1, "boot": 1, "values": {"door": true}}')
    backend.wait_message(topic, b'{"seq": 1, "boot": 1, "values": {"door": true}}')


@pytest.mark.parametrize("stack_kind", ["real"])  # the embedded broker has no files
def test_broker_files_edited_by_hand_are_repaired_by_the_periodic_resync(
    start_stack, mqtt_client, monkeypatch
):
    from fieldline_backend.mqtt_auth import component

    monkeypatch.setattr(component, "RESYNC_SECONDS", 0.3)
    with start_stack() as stack:
        assert stack.mosquitto is not None
        with stack.running.internal_client() as http:
            answer = http.post(
                "/internal/mqtt-accounts",
                json={"device_id": "dev-drift", "owner_id": "1", "name": "d", "metadata": {}},
            )
        password = answer.json()["password"]
        stack.mosquitto.password_file.write_text("")  # someone empties the file
        stack.mosquitto.reload()
        wait_for(
            lambda: "dev-drift:" in stack.mosquitto.password_file.read_text(),
            5,
            "the periodic resync to rewrite the emptied password file",
        )
        # The resync reloads Mosquitto before the file counts as applied.
        deadline = time.monotonic() + 5
        while not mqtt_client(stack, "dev-drift", "dev-drift", password).connect():
            assert time.monotonic() < deadline, "the repaired file was not reloaded"
            time.sleep(0.1)
