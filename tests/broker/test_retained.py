"""Issue 13, item 2: a retained message goes only to a matching subscription the client
holds and may receive on; never on CONNECT, never another device's.

The setup every test shares: device B has a retained `online` on its status, a backend
client follows devices/+/status (as the ingestor does: amqtt 0.12.1 sent every new client
the retained messages matching *any* client's subscription), and the backend retained a
command for device A (what A may receive, the control)."""

from __future__ import annotations

import asyncio
import time

import pytest


@pytest.fixture
def retained_world(broker):
    a, b = broker.device(owner_id="alice"), broker.device(owner_id="bob")
    broker.watcher("devices/+/status")
    b_client = broker.client(b)
    assert b_client.connect()
    b_client.client.publish(f"{b.prefix}/status", b"online", qos=1, retain=True).wait_for_publish(5)
    backend = broker.client()
    assert backend.connect()
    backend.client.publish(
        f"{a.prefix}/commands", b"calibrate", qos=1, retain=True
    ).wait_for_publish(5)
    time.sleep(0.2)  # PUBACK sent; let the broker finish storing
    return broker, a, b


def test_a_client_that_never_subscribes_receives_nothing(retained_world):
    broker, a, _b = retained_world
    client = broker.client(a)
    assert client.connect()
    time.sleep(1.0)
    assert client.messages == [], f"received without subscribing: {client.messages}"


def test_a_subscription_gets_its_own_retained_message_and_no_other(retained_world):
    broker, a, _b = retained_world
    client = broker.client(a)
    assert client.connect()
    assert client.subscribe(f"{a.prefix}/commands") == 1
    client.wait_message(f"{a.prefix}/commands", b"calibrate")
    time.sleep(0.5)
    topics = sorted({m.topic for m in client.messages})
    assert topics == [f"{a.prefix}/commands"], f"expected only its commands, got {topics}"


def test_umqtt_simple_never_subscribing_does_not_crash(retained_world):
    """micropython-lib umqtt.simple has no callback until it subscribes: an unsolicited
    PUBLISH makes wait_msg() call None (TypeError)."""
    broker, a, _b = retained_world
    code, output = broker.micropython(a, seconds=1.5)
    assert code == 0 and "done 0" in output, f"umqtt.simple (exit {code}): {output[-600:]}"


def test_umqtt_simple_subscribed_gets_only_its_retained_command(retained_world):
    broker, a, b = retained_world
    code, output = broker.micropython(a, seconds=1.5, subscribe=f"{a.prefix}/commands")
    assert code == 0, f"umqtt.simple (exit {code}): {output[-600:]}"
    assert f"message {a.prefix}/commands calibrate" in output, output[-600:]
    assert b.client_id not in output and "done 1" in output, output[-600:]


def test_the_sdk_hands_on_command_only_its_own_commands(retained_world, tmp_path):
    """Our SDK (on CPython) subscribes to its commands once online: on_command gets the
    retained command for it and nothing of another device's."""
    from fieldline import Device

    broker, a, _b = retained_world
    mqtt = {"host": broker.host, "port": broker.port, "client_id": a.client_id}
    mqtt.update(username=a.client_id, password=a.password)
    device = Device(
        device_id=a.client_id, wifi={"ssid": ""}, mqtt=mqtt, buffer={"dir": str(tmp_path)}
    )
    got: list[tuple[str, bytes]] = []
    device.on_command = lambda topic, payload: got.append((topic, bytes(payload)))

    async def run_for(seconds: float) -> None:
        task = device.start()
        await asyncio.sleep(seconds)
        await device.stop()
        task.cancel()

    asyncio.run(run_for(2.0))
    assert device.state != "connecting" and device.attempts >= 1, device.last_error
    assert got == [(f"{a.prefix}/commands", b"calibrate")], f"on_command got {got}"
