"""Issue 2, "Done when" 4, 7 and 8 on both stacks, through the public API: rotation,
disabling and deleting close the device's open connection within 5 s and refuse it
after; a fresh broker admits exactly the enabled devices once mqtt_auth reconciled it;
no password ever reaches the logs."""

from __future__ import annotations

import logging

from fieldline_backend.common.logs import JsonFormatter

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
