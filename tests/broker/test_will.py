"""Issue 13, item 1: a last will passes the same publish rule as a PUBLISH.

A will naming another device's topic is never published, retained or not. The embedded
broker refuses such a CONNECT with CONNACK 5 (not authorised) and counts it; Mosquitto
2.0.11 (measured) accepts the CONNECT and drops the will at publish time. The client is
mosquitto_sub, killed with SIGKILL so that the broker sees a dropped connection (a will
is published only then)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest


def sub_with_will(broker, device, will_topic: str, will_payload: str) -> subprocess.Popen:
    """mosquitto_sub as `device` (its own commands), with a retained QoS 1 will."""
    # stdbuf: its -d lines (CONNACK) reach us although it is killed.
    args = [
        "stdbuf",
        "-oL",
        "mosquitto_sub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-V",
        "mqttv311",
    ]
    args += ["-i", device.client_id, "-u", device.client_id, "-P", device.password]
    args += ["--will-topic", will_topic, "--will-payload", will_payload]
    args += ["--will-qos", "1", "--will-retain", "-t", f"{device.prefix}/commands", "-d"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def drop(process: subprocess.Popen, settle: float = 1.0) -> tuple[int | None, str]:
    """Let it run `settle` s, then kill it without a DISCONNECT: (exit code if it had
    exited by itself, its output)."""
    time.sleep(settle)
    exited = process.poll()
    if exited is None:
        process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=5)[0]
    return exited, output


def test_own_status_will_is_published_when_the_device_drops(broker):
    """The control: the kill above does make the broker publish a will."""
    device = broker.device()
    watcher = broker.watcher()
    exited, output = drop(sub_with_will(broker, device, f"{device.prefix}/status", "offline"))
    assert exited is None, f"the device's own will was refused: {output}"
    watcher.wait_message(f"{device.prefix}/status", b"offline")


@pytest.mark.parametrize("victim_topic", ["commands", "status"])
def test_will_on_another_devices_topic_is_refused_and_never_delivered(broker, victim_topic):
    attacker, victim = broker.device(owner_id="mallory"), broker.device(owner_id="alice")
    victim_client = broker.client(victim)
    assert victim_client.connect()
    assert victim_client.subscribe(f"{victim.prefix}/commands") == 1
    watcher = broker.watcher()
    target = f"{victim.prefix}/{victim_topic}"

    refused_before = broker.metric("fieldline_broker_refused_total", reason="will_not_allowed")

    exited, output = drop(sub_with_will(broker, attacker, target, "reboot"))

    refused = exited is not None and "not authorised" in output.lower()
    if broker.kind == "embedded":
        assert refused, (
            f"expected CONNACK 5 (not authorised) for a will on {target}; mosquitto_sub "
            f"said: {output.strip()[-300:]!r} (exit {exited})"
        )
        counted = broker.metric("fieldline_broker_refused_total", reason="will_not_allowed")
        assert counted == refused_before + 1, f"refusals counted: {refused_before} -> {counted}"
    # Mosquitto 2.0.11 (measured) accepts the CONNECT and drops the will when the device
    # drops (its ACL check at publish time); either way nobody may receive it.
    time.sleep(0.5)
    assert victim_client.messages == [], f"the victim received {victim_client.messages}"
    assert watcher.messages == [], f"the broker routed {watcher.messages}"
    # Nothing retained either: a new subscriber gets no retained will.
    late = broker.watcher(target)
    time.sleep(0.5)
    assert late.messages == [], f"retained on {target}: {late.messages}"
