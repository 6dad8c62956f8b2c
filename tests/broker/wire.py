"""Raw MQTT 3.1.1 bytes for what no client library sends: a PUBLISH that announces 50 MB,
a socket that never sends CONNECT. Written from the spec (OASIS MQTT 3.1.1, 2.2 and 3.1)."""

from __future__ import annotations

import socket
import struct
import time


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 30) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    body = utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body += utf8(client_id) + utf8(username) + utf8(password)
    return b"\x10" + remaining_length(len(body)) + body


def publish_head(topic: str, payload_size: int, packet_id: int = 1) -> bytes:
    """Fixed header + topic + packet id of a QoS 1 PUBLISH whose payload follows."""
    variable = utf8(topic) + struct.pack("!H", packet_id)
    return b"\x32" + remaining_length(len(variable) + payload_size) + variable


def open_session(host: str, port: int, client_id: str, password: str) -> socket.socket:
    """A connected, accepted MQTT session on a bare socket."""
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(connect_packet(client_id, client_id, password))
    connack = sock.recv(4)
    assert connack[:2] == b"\x20\x02" and connack[3] == 0, f"CONNACK {connack!r}"
    return sock


def seconds_until_closed(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the peer closes (EOF or reset), reading and discarding what it
    sends; None when it is still open after `timeout`."""
    start = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - start < timeout:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset
            return time.monotonic() - start
    return None


def send_until_closed(sock: socket.socket, data: bytes, chunk: int = 16384) -> int:
    """Send `data` until the peer stops taking it; bytes it took (sent without error)."""
    sock.settimeout(2)
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent : sent + chunk])
    except OSError:
        pass
    return sent
