"""A bare MQTT 3.1.1 CONNECT, to ask a broker whether it admits a user/password now.

Used to confirm that Mosquitto has applied a reload before an API call returns."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 10) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body += _string(client_id) + _string(username) + _string(password)
    return b"\x10" + _remaining_length(len(body)) + body


async def connack_code(
    host: str,
    port: int,
    client_id: str,
    username: str,
    password: str,
    timeout: float = 2.0,
    tls: bool = False,
) -> int:
    """The CONNACK return code (0 = accepted); raises OSError/TimeoutError if unreachable.

    With tls the certificate is not verified: this only asks whether the broker admits
    a user now (mqtt_auth's throwaway reload-check user), it carries no secret of value.
    """
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    async def attempt() -> int:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            writer.write(connect_packet(client_id, username, password))
            await writer.drain()
            header = await reader.readexactly(4)
            if header[0] != 0x20:
                raise OSError(f"expected CONNACK, got packet type {header[0] >> 4}")
            if header[3] == 0:
                writer.write(b"\xe0\x00")  # DISCONNECT
                await writer.drain()
            return header[3]
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(attempt(), timeout)
    except asyncio.IncompleteReadError as error:  # closed without CONNACK: refused
        raise OSError("the broker closed the connection without a CONNACK") from error
