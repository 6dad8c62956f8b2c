"""mqtt_auth's internal API (docs/architecture.md) on both stacks: the contract the
devices service and the storage service (device info by client id) rely on."""

from __future__ import annotations

import secrets

import pytest


def new_id() -> str:
    return f"dev-{secrets.token_hex(5)}"


def create(http, device_id: str, **extra):
    body = {"device_id": device_id, "owner_id": 7, "name": "boiler", "metadata": {"room": "b"}}
    return http.post("/internal/mqtt-accounts", json={**body, **extra})


def test_device_info_by_client_follows_the_account(broker_stack):
    device_id = new_id()
    with broker_stack.running.internal_client() as http:
        assert create(http, device_id).status_code == 201
        info = http.get(f"/internal/devices/by-client/{device_id}")
        assert info.status_code == 200
        assert info.json() == {
            "device_id": device_id,
            "owner_id": "7",  # owner ids travel as text
            "name": "boiler",
            "metadata": {"room": "b"},
            "enabled": True,
        }
        changed = http.patch(
            f"/internal/mqtt-accounts/{device_id}",
            json={"name": "kettle", "metadata": {"room": "k", "floor": 2}, "enabled": False},
        )
        assert changed.status_code == 200, changed.text
        info = http.get(f"/internal/devices/by-client/{device_id}").json()
        assert info["name"] == "kettle" and info["metadata"] == {"room": "k", "floor": 2}
        assert info["enabled"] is False
        assert http.delete(f"/internal/mqtt-accounts/{device_id}").status_code == 204
        assert http.get(f"/internal/devices/by-client/{device_id}").status_code == 404


def test_unknown_accounts_answer_404_with_a_message(broker_stack):
    missing = new_id()
    with broker_stack.running.internal_client() as http:
        for answer in (
            http.get(f"/internal/devices/by-client/{missing}"),
            http.post(f"/internal/mqtt-accounts/{missing}/rotate"),
            http.patch(f"/internal/mqtt-accounts/{missing}", json={"enabled": False}),
            http.delete(f"/internal/mqtt-accounts/{missing}"),
        ):
            assert answer.status_code == 404
            assert missing in answer.json()["detail"]


def test_a_second_account_with_the_same_id_or_a_reserved_name_is_409(broker_stack):
    device_id = new_id()
    with broker_stack.running.internal_client() as http:
        assert create(http, device_id).status_code == 201
        again = create(http, device_id)
        assert again.status_code == 409 and "exists" in again.json()["detail"]
        backend_username = broker_stack.backend_credentials[0]
        assert create(http, backend_username).status_code == 409
        assert create(http, "fieldline-reload-check").status_code == 409


@pytest.mark.parametrize(
    "bad_id", ["dev/1", "dev+1", "dev#", "a:b", "two words", "line\nuser x", "", "x" * 65, "-x"]
)
def test_ids_that_cannot_be_mqtt_client_ids_are_422(broker_stack, bad_id):
    with broker_stack.running.internal_client() as http:
        answer = create(http, bad_id)
    assert answer.status_code == 422, answer.text


def test_internal_routes_need_the_internal_token(broker_stack):
    with broker_stack.running.client() as http:
        assert create(http, new_id()).status_code == 401
        assert http.get(f"/internal/devices/by-client/{new_id()}").status_code == 401


def test_a_refused_impostor_neither_cuts_off_nor_shields_the_real_device(broker_stack, mqtt_client):
    """A CONNECT with a device's client id and a wrong password is refused without
    touching the device's connection (amqtt 0.12.1 alone would drop its session), and
    disabling the device still closes that connection."""
    device_id = new_id()
    username, backend_password = broker_stack.backend_credentials
    backend = mqtt_client(
        broker_stack, f"ingestor-{secrets.token_hex(3)}", username, backend_password
    )
    assert backend.connect()
    with broker_stack.running.internal_client() as http:
        password = create(http, device_id).json()["password"]
        device = mqtt_client(broker_stack, device_id, device_id, password)
        assert device.connect()
        commands = f"devices/{device_id}/commands"
        assert device.subscribe(commands) == 1
        impostor = mqtt_client(broker_stack, device_id, device_id, "guess")
        assert not impostor.connect()

        backend.publish(commands, b"still-yours")
        device.wait_message(commands, b"still-yours")
        assert device.connected and not device.disconnects, "the impostor cut the device off"

        answer = http.patch(f"/internal/mqtt-accounts/{device_id}", json={"enabled": False})
        assert answer.status_code == 200
    assert device.wait_disconnected(5.0) <= 5.0
    assert not mqtt_client(broker_stack, device_id, device_id, password).connect()


def test_accounts_created_at_once_are_all_admitted_when_their_calls_return(
    broker_stack, mqtt_client
):
    """Concurrent changes share broker updates; none may be left out of them."""
    from concurrent.futures import ThreadPoolExecutor

    def create_one(_: int) -> tuple[str, str]:
        device_id = new_id()
        with broker_stack.running.internal_client() as http:
            answer = create(http, device_id)
        assert answer.status_code == 201, answer.text
        return device_id, answer.json()["password"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create_one, range(16)))
    for device_id, password in created:
        client = mqtt_client(broker_stack, device_id, device_id, password)
        assert client.connect(), f"{device_id} refused after its creation returned"
        client.close()


def test_readiness_reports_whether_the_broker_is_up(broker_stack):
    with broker_stack.running.client() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["mqtt_auth.broker"] is True
        if broker_stack.mosquitto is not None:  # a private Mosquitto we may stop
            broker_stack.mosquitto.stop()
            down = http.get("/readyz")
            assert down.status_code == 503
            assert down.json()["detail"]["checks"]["mqtt_auth.broker"] is False
