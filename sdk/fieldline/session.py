"""One MQTT 3.1.1 connection over asyncio streams (MicroPython and CPython alike).

The session knows packets and timers, not policy: it connects (last will, clean session
off), keeps a window of QoS 1 PUBLISHes in flight until their PUBACK (re-sent with `dup`
after a timeout and after a reconnect, with their original packet ids), pings, and declares
the link dead when the broker has been silent for 1.5 keepalives. When the link dies,
`dead` is set and `error` says why; the Device decides what to do next.
"""

from fieldline import port, wire
from fieldline.port import asyncio


class MqttRefused(Exception):
    """The broker answered CONNACK with a refusal (bad credentials, not authorized, ...)."""

    def __init__(self, code):
        self.code = code
        reason = wire.CONNACK_REASONS.get(code, "return code %d" % code)
        super().__init__("broker refused the connection: " + reason)


class Session:
    def __init__(
        self,
        client_id,
        username=None,
        password=None,
        keepalive_s=30,
        will_topic=None,
        will_message=b"offline",
        tx_bytes=1280,
        rx_bytes=512,
        window=4,
        ack_timeout_ms=0,
        on_message=None,
        on_ack=None,
    ):
        self.client_id = client_id.encode()
        self._username = username.encode() if username else None
        self._password = password.encode() if password else None
        self.keepalive_ms = keepalive_s * 1000
        self._will_topic = will_topic.encode() if will_topic else None
        self._will_message = will_message
        # One transmit buffer, written only under _wlock; one receive buffer for the reader
        # task. Neither is ever resized (a memoryview into a resized buffer is an error).
        self._tx = bytearray(tx_bytes)
        self._txmv = memoryview(self._tx)
        self._rx = bytearray(rx_bytes)
        self._rxmv = memoryview(self._rx)
        self._byte = bytearray(1)
        self._bytemv = memoryview(self._byte)
        self.window = window
        self.ack_timeout_ms = ack_timeout_ms or max(2000, self.keepalive_ms // 2)
        self.on_message = on_message
        self.on_ack = on_ack
        self.inflight = []  # [pid, topic, payload, retain, token, sent_ticks], oldest first
        self._pid = 0
        self._reader = None
        self._writer = None
        self._wlock = asyncio.Lock()
        self._acked = asyncio.Event()
        self.dead = asyncio.Event()
        self.error = None
        self._tasks = []
        self._last_rx = port.ticks_ms()
        self._last_tx = self._last_rx
        self._last_ping = self._last_rx
        self.connected = False

    # ---- connection ---------------------------------------------------------------------

    async def connect(
        self, host, port_number, ssl_ctx=None, server_hostname=None, timeout_ms=10000
    ):
        """Open the link and complete CONNECT/CONNACK; returns session_present.

        Raises OSError for network faults and MqttRefused when the broker says no."""
        self.dead = asyncio.Event()
        self.error = None
        reader, writer = await port.open_stream(
            host, port_number, ssl_ctx, server_hostname, timeout_ms
        )
        self._reader = reader
        self._writer = writer
        try:
            size = wire.connect_size(
                self.client_id,
                self._username,
                self._password,
                self._will_topic,
                self._will_message,
            )
            buf = self._tx if size <= len(self._tx) else bytearray(size)
            n = wire.connect(
                buf,
                self.client_id,
                self.keepalive_ms // 1000,
                False,
                self._username,
                self._password,
                self._will_topic,
                self._will_message,
                1,
                True,
            )
            await port.write_all(writer, memoryview(buf)[:n], timeout_ms)
            try:
                packet = await asyncio.wait_for(  # type: ignore[var-annotated]
                    self._read_packet(), timeout_ms / 1000
                )
            except asyncio.TimeoutError:
                raise OSError(110, "no CONNACK within %d ms" % timeout_ms) from None
            first, body = packet[0], packet[1]
            if first & 0xF0 != wire.CONNACK:
                raise wire.ProtocolError("expected CONNACK, got packet type 0x%02x" % first)
            present, code = wire.parse_connack(body)
            if code:
                raise MqttRefused(code)
        except BaseException:
            self._close_stream()
            raise
        self.connected = True
        self._last_rx = self._last_tx = self._last_ping = port.ticks_ms()
        return present

    def start(self):
        """Run the reader and the keepalive timer until the link dies."""
        self._tasks = [
            asyncio.create_task(self._guard(self._read_loop())),
            asyncio.create_task(self._guard(self._keepalive_loop())),
        ]

    async def _guard(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - any failure ends this link
            self.kill(exc)

    def kill(self, exc):
        """End the link (first reason wins); in-flight messages stay for the next link."""
        if self.error is None:
            self.error = exc
        self.connected = False
        self._close_stream()
        self.dead.set()
        self._acked.set()  # wake a publisher waiting for window space

    def stop(self):
        for task in self._tasks:
            try:
                task.cancel()
            except Exception:  # noqa: BLE001 - a finished task may refuse cancel
                pass
        self._tasks = []
        if self.error is None:
            self.kill(OSError(0, "closed"))

    def _close_stream(self):
        if self._writer is not None:
            port.close_stream(self._writer)
        self._writer = None
        self._reader = None

    async def disconnect(self):
        """Polite DISCONNECT (the broker then does not publish the last will)."""
        if self.connected:
            try:
                await self._send_small(wire.disconnect)
            except OSError:
                pass
        self.stop()

    # ---- sending ------------------------------------------------------------------------

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _write(self, n, buf=None):
        if self._writer is None:
            raise OSError(107, "not connected")
        mv = self._txmv if buf is None else memoryview(buf)
        await port.write_all(self._writer, mv[:n], self.ack_timeout_ms)
        self._last_tx = port.ticks_ms()

    async def _send_small(self, build, *args):
        async with self._wlock:
            n = build(self._tx, *args)
            await self._write(n)

    def _one_off(self, topic, payload):
        """A buffer for a PUBLISH bigger than the preallocated one, else None."""
        size = wire.publish_size(topic, len(payload), 1)
        return bytearray(size) if size > len(self._tx) else None

    async def _send_publish(self, entry, dup, one_off=None):
        pid, topic, payload, retain = entry[0], entry[1], entry[2], entry[3]
        if one_off is None:
            one_off = self._one_off(topic, payload)
        async with self._wlock:
            if one_off is None:
                n = wire.publish(self._tx, topic, payload, pid, 1, retain, dup)
                await self._write(n)
            else:
                n = wire.publish(one_off, topic, payload, pid, 1, retain, dup)
                await self._write(n, one_off)
        entry[5] = port.ticks_ms()

    def window_free(self):
        return len(self.inflight) < self.window

    async def wait_window(self):
        """Until fewer than `window` PUBLISHes await their PUBACK; OSError if the link dies."""
        while len(self.inflight) >= self.window:
            if not self.connected:
                raise OSError(107, "link down while waiting for PUBACKs")
            self._acked.clear()
            await self._acked.wait()

    async def publish(self, topic, payload, retain=False, token=None):
        """QoS 1 PUBLISH; returns once written (the PUBACK comes later, to on_ack(token))."""
        await self.wait_window()
        if not self.connected:
            raise OSError(107, "not connected")
        # Allocated first: a MemoryError leaves nothing in flight and nothing written.
        one_off = self._one_off(topic, payload)
        entry = [self._next_pid(), topic, payload, retain, token, port.ticks_ms()]
        self.inflight.append(entry)
        await self._send_publish(entry, False, one_off)
        return entry[0]

    async def wait_acked(self, timeout_ms):
        """Until nothing awaits its PUBACK (True), or the link drops or timeout_ms passes."""
        waited = 0
        while self.inflight and self.connected and waited < timeout_ms:
            await port.sleep_ms(10)
            waited += 10
        return not self.inflight

    async def resend_inflight(self):
        """After a reconnect: every unacknowledged PUBLISH again, same ids, with dup."""
        for entry in list(self.inflight):
            await self._send_publish(entry, True)

    async def subscribe(self, topic, qos=1):
        await self._send_small(wire.subscribe, self._next_pid(), topic, qos)

    # ---- receiving ----------------------------------------------------------------------

    async def _read_packet(self):
        """(first byte, body) of the next packet; body is a view into the receive buffer."""
        reader = self._reader
        await port.read_into(reader, self._bytemv)
        first = self._byte[0]
        length = 0
        shift = 0
        done = False
        while not done:
            await port.read_into(reader, self._bytemv)
            length, done = wire.decode_varint_step(length, shift, self._byte[0])
            shift += 7
        if length <= len(self._rx):
            body = self._rxmv[:length]
        else:  # an unusually large command: its own buffer
            body = memoryview(bytearray(length))
        if length:
            await port.read_into(reader, body)
        self._last_rx = port.ticks_ms()
        return first, body

    async def _read_loop(self):
        while True:
            first, body = await self._read_packet()
            kind = first & 0xF0
            if kind == wire.PUBACK:
                self._on_puback(wire.parse_packet_id(body))
            elif kind == wire.PUBLISH:
                topic, pid, payload, qos = wire.parse_publish(first, body)
                payload = bytes(payload)  # the receive buffer is reused by the next read
                if qos:
                    await self._send_small(wire.puback, pid)
                if self.on_message is not None:
                    try:
                        self.on_message(topic, payload)
                    except Exception as exc:  # noqa: BLE001 - a bad handler must not kill the link
                        print("fieldline: command handler failed:", repr(exc))
            elif kind in (wire.PINGRESP, wire.SUBACK):
                pass
            else:
                raise wire.ProtocolError("unexpected packet type 0x%02x" % first)

    def _on_puback(self, pid):
        inflight = self.inflight
        for i in range(len(inflight)):
            if inflight[i][0] == pid:
                entry = inflight.pop(i)
                self._acked.set()
                if self.on_ack is not None:
                    self.on_ack(entry[4])
                return
        # A PUBACK for something no longer in flight (a duplicate ack): harmless.

    async def _keepalive_loop(self):
        keepalive = self.keepalive_ms
        ping_every = keepalive // 2
        dead_after = keepalive * 3 // 2
        tick = max(50, min(1000, keepalive // 10))
        while True:
            await port.sleep_ms(tick)
            now = port.ticks_ms()
            silent = port.ticks_diff(now, self._last_rx)
            if silent > dead_after:
                raise OSError(110, "broker silent for %d ms (dead link)" % silent)
            if port.ticks_diff(now, self._last_ping) >= ping_every:
                self._last_ping = now
                await self._send_small(wire.pingreq)
            for entry in list(self.inflight):  # PUBACKs may remove entries meanwhile
                if port.ticks_diff(now, entry[5]) > self.ack_timeout_ms:
                    await self._send_publish(entry, True)
