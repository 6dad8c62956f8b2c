"""Protocol edges a real broker will not produce on demand, against a scripted broker
(exact packets, paho-mqtt's testsupport idea): the SDK's Session runs under micropython.

- a PUBLISH without PUBACK is re-sent with dup, same packet id, on the same connection;
- after the connection drops, the reconnect (clean session off) re-sends it, dup, same id;
- the CONNECT carries the last will (retained, QoS 1) and clean session off;
- a refused CONNACK surfaces as MqttRefused with the broker's reason.
"""

from __future__ import annotations

import socket
import subprocess
import threading

from tests.sdk.board import build_board, device_config, micropython_path

CLIENT = """
import sys
import asyncio
from fieldline.session import Session, MqttRefused
PORT = int(sys.argv[1])
acks = []
s = Session("edge-dev", "edge-dev", "pw", keepalive_s=10, will_topic="devices/edge-dev/status",
            ack_timeout_ms=400, on_ack=acks.append)
async def main():
    await s.connect("127.0.0.1", PORT, timeout_ms=5000)
    s.start()
    await s.publish(b"devices/edge-dev/telemetry", b'{"seq":1}', False, "token-1")
    await s.dead.wait()
    print("link lost", repr(s.error))
    s.stop()
    present = await s.connect("127.0.0.1", PORT, timeout_ms=5000)
    print("session present", present)
    s.start()
    await s.resend_inflight()
    for _ in range(100):
        if acks:
            break
        await asyncio.sleep_ms(20)
    print("acked", acks)
    s.stop()
    try:
        await s.connect("127.0.0.1", PORT, timeout_ms=5000)
    except MqttRefused as exc:
        print("refused", exc.code, exc)
asyncio.run(main())
"""


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError("client closed")
            data += chunk
        return data

    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        byte = exactly(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, exactly(length)


class ScriptedBroker(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.packets: list[tuple[int, int, bytes]] = []  # (connection no, first byte, body)
        self.error: BaseException | None = None

    def _expect(self, conn, n: int, kind: int) -> bytes:
        first, body = _read_packet(conn)
        self.packets.append((n, first, body))
        assert first & 0xF0 == kind, f"connection {n}: expected 0x{kind:02x}, got 0x{first:02x}"
        return body

    def run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                self._expect(conn, 1, 0x10)
                conn.sendall(b"\x20\x02\x00\x00")
                self._expect(conn, 1, 0x30)  # the PUBLISH: left unacknowledged...
                self._expect(conn, 1, 0x30)  # ...so it comes again on the same connection
            conn, _ = self.listener.accept()  # the client reconnects
            with conn:
                self._expect(conn, 2, 0x10)
                conn.sendall(b"\x20\x02\x01\x00")  # session present
                body = self._expect(conn, 2, 0x30)
                topic_len = int.from_bytes(body[:2], "big")
                conn.sendall(b"\x40\x02" + body[2 + topic_len : 4 + topic_len])  # PUBACK
                conn.recv(1)  # until the client closes
            conn, _ = self.listener.accept()
            with conn:
                self._expect(conn, 3, 0x10)
                conn.sendall(b"\x20\x02\x00\x05")  # not authorized
                conn.recv(1)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def test_session_resends_with_dup_and_same_id_and_reports_refusal(tmp_path):
    board = build_board(tmp_path / "board", device_config("edge-dev", 1))
    (board / "edge_client.py").write_text(CLIENT)
    broker = ScriptedBroker()
    broker.start()
    result = subprocess.run(
        [str(micropython_path()), "edge_client.py", str(broker.port)],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    broker.join(10)
    out = result.stdout + result.stderr
    assert broker.error is None, f"{broker.error!r}\nclient said:\n{out}"

    connect = broker.packets[0][2]
    flags = connect[7]
    assert flags & 0x02 == 0, "clean session must be off"
    assert flags & 0x04 and flags & 0x20 and (flags >> 3) & 3 == 1, "will: retained, QoS 1"
    assert b"devices/edge-dev/status" in connect and b"offline" in connect

    publishes = [(n, first, body) for n, first, body in broker.packets if first & 0xF0 == 0x30]
    assert len(publishes) == 3, publishes
    (_, first1, body1), (_, first2, body2), (n3, first3, body3) = publishes
    assert first1 == 0x32, "first send: QoS 1, no dup, not retained"
    assert first2 == 0x3A and body2 == body1, "re-send after the ack timeout: dup, same id"
    assert n3 == 2 and first3 == 0x3A and body3 == body1, "re-send after reconnect: dup, same id"
    assert "session present True" in out
    assert "acked ['token-1']" in out, out
    assert "refused 5 broker refused the connection: not authorized" in out, out
