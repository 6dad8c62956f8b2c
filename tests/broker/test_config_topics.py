"""Issue 15: a device's desired config (retained on devices/<id>/config, written only by
the backend's account) reaches that device and no other, on both brokers, for our
clients and micropython-lib's umqtt.simple; a device's report on its config is
forwarded to storage like its telemetry, the backend's own config publish is not."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def configs(broker):
    a, b = broker.device(owner_id="alice"), broker.device(owner_id="bob")
    backend = broker.client()
    assert backend.connect()
    for device, interval in ((a, 5), (b, 60)):
        payload = b'{"version":1,"config":{"interval_s":%d}}' % interval
        backend.client.publish(f"{device.prefix}/config", payload, qos=1, retain=True)
    time.sleep(0.3)
    return broker, a, b


def test_a_device_gets_its_own_retained_config(configs):
    broker, a, _b = configs
    client = broker.client(a)
    assert client.connect()
    assert client.subscribe(f"{a.prefix}/config") == 1
    client.wait_message(f"{a.prefix}/config", b'{"version":1,"config":{"interval_s":5}}')


@pytest.mark.parametrize("topic", ["devices/{b}/config", "devices/+/config", "devices/#"])
def test_another_devices_config_is_refused(configs, topic):
    broker, a, b = configs
    client = broker.client(a)
    assert client.connect()
    # amqtt refuses the subscription (0x80); Mosquitto on MQTT 3.1.1 grants it and then
    # delivers nothing the ACL does not let the client read. Either way: nothing arrives.
    granted = client.subscribe(topic.format(b=b.client_id))
    assert granted == (1 if broker.kind == "mosquitto" else 0x80), granted
    time.sleep(0.8)
    leaked = [m.topic for m in client.messages if not m.topic.startswith(a.prefix + "/")]
    assert leaked == [], f"{a.client_id} received {leaked}"


def test_umqtt_simple_gets_no_other_devices_config(configs):
    broker, a, b = configs
    code, output = broker.micropython(a, seconds=1.5, subscribe=f"{b.prefix}/config")
    refused = "MQTTException: 128" in output  # umqtt.simple raises on a SUBACK of 0x80
    assert refused or (code == 0 and "done 0" in output), output[-600:]
    assert "interval_s" not in output, output[-600:]
    code, output = broker.micropython(a, seconds=1.5, subscribe=f"{a.prefix}/config")
    assert f'message {a.prefix}/config {{"version":1,"config":{{"interval_s":5}}}}' in output


def test_a_device_cannot_write_another_devices_config(configs):
    broker, a, b = configs
    client = broker.client(a)
    assert client.connect()
    client.publish(f"{b.prefix}/config", b'{"version":9,"config":{}}', qos=1)
    reader = broker.client(b)
    assert reader.connect() and reader.subscribe(f"{b.prefix}/config") == 1
    time.sleep(0.8)
    assert [m.payload for m in reader.messages] == [b'{"version":1,"config":{"interval_s":60}}']
