"""Issue 13, item 3: no packet over max_packet_size (70000 bytes: the 64 KiB payload of
the telemetry contract, its topic and headers) is buffered, acknowledged or delivered.

The broker learns a packet's size from its fixed header; it must close the connection
there, before reading the body. A raw socket announces a 50 MB PUBLISH and sends only
the first 64 KiB of it: a broker that buffers would sit waiting for the rest."""

from __future__ import annotations

import socket
import time

from tests.broker import wire

FIFTY_MB = 50 * 1024 * 1024


def test_a_50_mb_publish_is_refused_from_its_header(broker):
    device = broker.device()
    watcher = broker.watcher()
    before = broker.metric("fieldline_broker_refused_total", reason="packet_too_large")
    sock = wire.open_session(broker.host, broker.port, device.client_id, device.password)
    try:
        sock.sendall(wire.publish_head(f"{device.prefix}/telemetry", FIFTY_MB))
        wire.send_until_closed(sock, b"x" * 65536)
        closed_after = wire.seconds_until_closed(sock, timeout=3)
    finally:
        sock.close()
    assert closed_after is not None, (
        "expected the broker to close the connection on a PUBLISH announcing 50 MB; it was "
        "still open 3 s after 64 KiB of it (waiting to buffer the rest)"
    )
    time.sleep(0.3)
    assert watcher.messages == [], f"delivered: {[m.topic for m in watcher.messages]}"
    if broker.kind == "embedded":
        after = broker.metric("fieldline_broker_refused_total", reason="packet_too_large")
        assert after == before + 1, f"packet_too_large counted {before} -> {after}"


def test_a_100_kib_publish_gets_no_puback_and_reaches_nobody(broker):
    device = broker.device()
    watcher = broker.watcher()
    client = broker.client(device)
    assert client.connect()
    info = client.client.publish(f"{device.prefix}/telemetry", b"7" * 100 * 1024, qos=1)
    client.wait_disconnected(timeout=3)
    assert not info.is_published(), "a 100 KiB PUBLISH was acknowledged"
    time.sleep(0.3)
    assert watcher.messages == [], f"delivered: {[m.topic for m in watcher.messages]}"


def test_a_64_kib_payload_the_contract_allows_is_delivered(broker):
    device = broker.device()
    watcher = broker.watcher()
    client = broker.client(device)
    assert client.connect()
    payload = b"[" + b" " * (64 * 1024 - 2) + b"]"
    client.publish(f"{device.prefix}/telemetry", payload)
    watcher.wait_message(f"{device.prefix}/telemetry", payload)
    assert client.connected, "the broker closed a connection that sent 64 KiB"


def test_a_connect_announcing_50_mb_is_refused_from_its_header(broker):
    """The limit holds before CONNECT too: an anonymous socket cannot make it buffer."""
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    try:
        head = wire.connect_packet("dev-x", "dev-x", "pw")
        sock.sendall(b"\x10" + wire.remaining_length(FIFTY_MB) + head[2:])
        wire.send_until_closed(sock, b"x" * 65536)
        closed_after = wire.seconds_until_closed(sock, timeout=3)
    finally:
        sock.close()
    assert closed_after is not None, "a CONNECT announcing 50 MB kept its connection 3 s"


def test_a_malformed_length_is_refused(broker):
    """Length bytes that never end (MQTT allows four): closed, not read on."""
    device = broker.device()
    sock = wire.open_session(broker.host, broker.port, device.client_id, device.password)
    try:
        wire.send_until_closed(sock, b"\x32" + b"\xff" * 4096)
        closed_after = wire.seconds_until_closed(sock, timeout=3)
    finally:
        sock.close()
    assert closed_after is not None, "endless remaining-length bytes kept the connection 3 s"
