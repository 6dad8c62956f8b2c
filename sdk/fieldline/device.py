"""The Device: `publish()` stamps a reading and stores it (a few ms, never network I/O);
`run()` is the cooperative loop that joins Wi-Fi, connects to the broker with backoff,
drains the buffer in order and in batches, and reports drops.

    from fieldline import Device
    device = Device("config.json")
    device.start()  # inside asyncio.run(...): see docs/sdk.md
    device.publish({"temperature": 21.5})
"""

import json

from fieldline import port, reading
from fieldline.backoff import Backoff, seed_for
from fieldline.buffer import OfflineBuffer
from fieldline.clock import Clock, next_boot
from fieldline.journal import Journal, _makedirs
from fieldline.port import asyncio
from fieldline.session import MqttRefused, Session
from fieldline.wire import ProtocolError

DEFAULTS = {
    "device_id": "",
    "wifi": {"ssid": "", "password": ""},
    "mqtt": {
        "host": "127.0.0.1",
        "port": 1883,
        "tls": False,
        "ca": "",
        "server_hostname": "",
        "client_id": "",
        "username": "",
        "password": "",
        "keepalive": 30,
        "connect_timeout_ms": 10000,
    },
    "interval_s": 10,
    "buffer": {"ram": 8, "flash_bytes": 262144, "dir": "fieldline_data", "batch": 25},
    "backoff": {"base_ms": 1000, "cap_ms": 60000, "stable_s": 60},
    "tx_bytes": 1280,
    "window": 4,
    "ntp_wait_s": 30,
    "watchdog_ms": 0,
}


def load_config(config=None, overrides=None):
    """DEFAULTS, then config.json (a path) or a dict, then keyword overrides; one level of
    nested sections is merged so {"mqtt": {"port": 8883}} keeps the other mqtt keys."""
    merged = {}  # type: dict
    for key, value in DEFAULTS.items():
        merged[key] = dict(value) if isinstance(value, dict) else value
    layers = []
    if isinstance(config, str):
        try:
            with open(config) as f:
                layers.append(json.load(f))
        except OSError as exc:
            raise ValueError("cannot read %s (%r): is the board provisioned?" % (config, exc))
    elif config is not None:
        layers.append(config)
    if overrides:
        layers.append(overrides)
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
    return merged


def log(*args):
    print("fieldline:", *args)


class Device:
    def __init__(self, config=None, **overrides):
        cfg = load_config(config, overrides)
        self.config = cfg
        mqtt = cfg["mqtt"]
        self.client_id = mqtt.get("client_id") or cfg.get("device_id") or ""
        if not self.client_id:
            raise ValueError("config needs device_id (or mqtt.client_id): run `provision` first")
        self.device_id = cfg.get("device_id") or self.client_id
        base = "devices/" + self.client_id
        self.telemetry_topic = (base + "/telemetry").encode()
        self.status_topic = (base + "/status").encode()
        self.drops_topic = (base + "/status/buffer").encode()
        self.commands_topic = (base + "/commands").encode()
        buf = cfg["buffer"]
        self.data_dir = data_dir = buf.get("dir") or "fieldline_data"
        _makedirs(data_dir)
        self.clock = Clock(next_boot(data_dir + "/boot"))
        self.journal = Journal(data_dir + "/journal", int(buf.get("flash_bytes") or 262144))
        self.buffer = OfflineBuffer(self.journal, int(buf.get("ram") or 8))
        self.batch = int(buf.get("batch") or 25)
        policy = cfg["backoff"]
        self.backoff = Backoff(
            seed_for(self.client_id, self.clock.boot),
            int(policy.get("base_ms", 1000)),
            int(policy.get("cap_ms", 60000)),
        )
        self.stable_ms = int(float(policy.get("stable_s", 60)) * 1000)
        self.tx_bytes = int(cfg.get("tx_bytes") or 1280)
        self.session = Session(
            self.client_id,
            mqtt.get("username") or None,
            mqtt.get("password") or None,
            int(mqtt.get("keepalive") or 30),
            self.status_topic.decode(),
            b"offline",
            tx_bytes=self.tx_bytes,
            window=int(cfg.get("window") or 4),
            on_message=self._on_message,
            on_ack=self._on_ack,
        )
        # A batch fits the preallocated transmit buffer with room for topic and header;
        # and stays small, since each in-flight batch is kept until its PUBACK.
        self.max_payload = min(
            int(buf.get("batch_bytes") or 1024), self.tx_bytes - len(self.telemetry_topic) - 8
        )
        self.wifi = port.Wifi(cfg["wifi"].get("ssid"), cfg["wifi"].get("password"))
        self._ssl_ctx = port.tls_context(mqtt.get("ca")) if mqtt.get("tls") else None
        self.state = "offline"
        self.on_state = None
        self.on_command = None
        self.remote = None  # a fieldline.remote.RemoteConfig sets itself here
        self.commands = None  # a fieldline.commands.Commands sets itself here
        self.ota = None  # a fieldline.ota.Updater sets itself here
        self.acked_batches = 0  # telemetry PUBACKs this boot (the Updater's confirmation)
        self.attempts = 0
        self.refusals = 0
        self.last_error = None
        self._reported_drops = 0
        self._last_ntp = None  # ticks_ms of the last NTP request, this link
        self._new = asyncio.Event()
        self._running = False
        self._started = False  # start() or run() was called: someone will send
        self._warned_idle = False
        log("boot", self.clock.boot, "device", self.client_id)

    # ---- the application side ------------------------------------------------------

    def publish(self, values):
        """Stamp and store one reading; returns its seq. ValueError for bad values."""
        values_json = reading.validate(values)
        self.clock.check_sync()
        ts, ticks, seq = self.clock.stamp()
        self.buffer.add(reading.encode(ts, ticks, seq, self.clock.boot, values_json))
        self._new.set()
        if not self._started and not self._warned_idle:
            self._warned_idle = True  # a script that never runs the loop sends nothing
            log(
                "publish(): the network loop is not running, the reading waits in the "
                "journal; call device.start() inside asyncio.run(main()) (docs/sdk.md)"
            )
        return seq

    def _on_message(self, topic, payload):
        remote = self.remote
        if remote is not None and topic == remote.topic:
            remote.received(payload)
            self._new.set()  # the send loop handles it
        elif self.commands is not None and topic == self.commands_topic:
            self.commands.received(payload)
            self._new.set()
        elif self.ota is not None and topic in (self.ota.topic, self.ota.chunk_topic):
            self.ota.received(topic, payload)
            self._new.set()
        elif self.on_command is not None:
            self.on_command(topic.decode(), payload)

    def _on_ack(self, token):
        if token is not None:
            self.buffer.commit(token)
            self.acked_batches += 1

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    # ---- the network loop ------------------------------------------------------------

    async def run(self):
        """Forever: Wi-Fi, broker, drain; back off between attempts. Never reboots for a
        missing network; port.reset() only after repeated unexpected failures."""
        self._running = True
        self._started = True
        failures = 0
        watchdog_ms = int(self.config.get("watchdog_ms") or 0)
        if watchdog_ms:
            asyncio.create_task(self._feed_watchdog(port.Watchdog(watchdog_ms), watchdog_ms))
        while self._running:
            try:
                await self._one_attempt()
                failures = 0
            except MemoryError as exc:
                # Not a reason to reset (the journal keeps every reading), nor to
                # hammer the broker: collect, say so, and retry after a pause.
                port.collect_garbage()
                failures += 1
                log("low memory, retrying in 1 s:", repr(exc))
                await port.sleep_ms(1000)
            except Exception as exc:  # noqa: BLE001 - the loop must survive surprises
                failures += 1
                log("unexpected error:", repr(exc))
                if failures > 5:
                    log("repeated failures, resetting")
                    port.reset()
                await port.sleep_ms(1000)

    async def _feed_watchdog(self, watchdog, timeout_ms):
        # Fed from the event loop, so a wedged loop (not a missing network) resets the board.
        while self._running:
            watchdog.feed()
            await port.sleep_ms(timeout_ms // 4)

    async def _wait(self, delay_ms, why):
        log("retry in %d ms (attempt %d, %s)" % (delay_ms, self.backoff.attempt, why))
        await port.sleep_ms(delay_ms)

    async def _one_attempt(self):
        self._set_state("connecting")
        if not await self.wifi.connect():
            self._set_state("offline")
            await self._wait(self.backoff.delay_ms(), "Wi-Fi did not connect")
            return
        mqtt = self.config["mqtt"]
        host = mqtt.get("host")
        port_number = int(mqtt.get("port") or 1883)
        self.attempts += 1
        log("connecting to %s:%d (attempt %d)" % (host, port_number, self.attempts))
        try:
            await self.session.connect(
                host,
                port_number,
                self._ssl_ctx,
                mqtt.get("server_hostname") or None,
                int(mqtt.get("connect_timeout_ms") or 10000),
            )
        except MqttRefused as exc:
            self.refusals += 1
            self.last_error = str(exc)
            self._set_state("offline")
            log(str(exc) + "; check mqtt.username and mqtt.password in config.json")
            await self._wait(self.backoff.refused_delay_ms(), "refused")
            return
        except (OSError, ProtocolError, ValueError) as exc:
            self.last_error = repr(exc)
            self._set_state("offline")
            await self._wait(self.backoff.delay_ms(), "connect failed: %r" % (exc,))
            return
        connected_at = port.ticks_ms()
        self._set_state("online")
        log("online")
        await self._serve_link()
        self._set_state("offline")
        lived = port.ticks_diff(port.ticks_ms(), connected_at)
        if lived >= self.stable_ms:
            self.backoff.reset()
        self.last_error = repr(self.session.error)
        port.collect_garbage()
        await self._wait(self.backoff.delay_ms(), "link lost: %r" % (self.session.error,))

    async def _serve_link(self):
        session = self.session
        session.start()
        sender = asyncio.create_task(self._guard(self._send_loop()))
        try:
            await session.dead.wait()
        finally:
            try:
                sender.cancel()
            except Exception:  # noqa: BLE001
                pass
            session.stop()
            self._rewind_unsent()

    def _rewind_unsent(self):
        """Readings taken from the buffer but not in flight are handed out again."""
        last = None
        for entry in self.session.inflight:
            if entry[4] is not None:
                last = entry[4]
        self.buffer.rewind_to(last)

    async def _guard(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - any send failure ends the link
            self.session.kill(exc)

    async def _send_loop(self):
        session = self.session
        # This link's own event (connect() makes a new one). A sender left over from a
        # dead link must stop before it takes readings from the buffer: _serve_link
        # cancels it, but asyncio.wait_for on CPython < 3.12 can swallow a cancel that
        # lands just as the write it waits on completes, and readings taken after
        # _rewind_unsent() would be skipped, then acknowledged by a later batch's PUBACK.
        dead = session.dead
        await session.resend_inflight()
        await session.publish(self.status_topic, b"online", True)
        await self._subscribe(session)
        online_at = port.ticks_ms()
        ntp_wait_ms = int(float(self.config.get("ntp_wait_s") or 0) * 1000)
        self._last_ntp = None
        batch = self.batch
        while True:
            if dead.is_set():
                return
            if self._waiting_for_clock(online_at, ntp_wait_ms):
                await port.sleep_ms(500)
                continue
            await self._report_drops(session)
            await self._steps(session)
            if self.buffer.has_unsent():
                await session.wait_window()
                if dead.is_set():
                    return
                batch = await self._send_batch(session, batch)
                continue
            self.journal.save_ack()
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), 1)
            except asyncio.TimeoutError:
                pass

    async def _subscribe(self, session):
        await session.subscribe(self.commands_topic, 1)
        if self.remote is not None:
            await session.subscribe(self.remote.topic, 1)  # the retained config follows
        ota = self.ota
        if ota is not None:
            await session.subscribe(ota.chunk_topic, 0)  # before the offer: it asks for chunks
            await session.subscribe(ota.topic, 1)  # the retained offer follows

    async def _steps(self, session):
        """Remote config, commands and updates: what arrived, and their reports."""
        if self.remote is not None:
            await self.remote.step(session)
        if self.commands is not None:
            await self.commands.step(session)
        if self.ota is not None:
            await self.ota.step(session)

    def _waiting_for_clock(self, online_at, ntp_wait_ms):
        """True while readings should wait for NTP: the clock is not set and the link has
        been up less than ntp_wait_s. Asks NTP at most every 10 s meanwhile."""
        if self.clock.check_sync():
            return False
        now = port.ticks_ms()
        if self._last_ntp is None or port.ticks_diff(now, self._last_ntp) > 10000:
            self._last_ntp = now
            port.sync_time()
        return not self.clock.check_sync() and port.ticks_diff(now, online_at) < ntp_wait_ms

    async def _report_drops(self, session):
        dropped = self.buffer.dropped
        if dropped != self._reported_drops:
            report = '{"dropped":%d,"boot":%d}' % (dropped, self.clock.boot)
            await session.publish(self.drops_topic, report.encode())
            log("reported", dropped, "dropped readings")
            self._reported_drops = dropped

    async def _send_batch(self, session, batch):
        """Publish the next batch of unsent readings; returns the batch size to use next
        (halved after a MemoryError)."""
        try:
            records, end = self.buffer.take(batch, self.max_payload - 2, reading.JSON_EXTRA)
            if len(records) > 1:
                port.collect_garbage()  # a batch is the one big allocation
            payload = reading.batch_payload(records, self.clock) if records else None
            if payload is not None:
                # MemoryError from here only before anything was written or registered
                # (Session.publish allocates first), so the batch can be taken again.
                await session.publish(self.telemetry_topic, payload, False, end)
        except MemoryError:
            # Smaller batches from now on, rather than a link that dies forever.
            self._rewind_unsent()
            port.collect_garbage()
            if batch == 1:  # not even one reading fits now: let the app free some
                await port.sleep_ms(1000)
                return batch
            batch = max(1, batch // 2)
            log("low memory: batches of", batch)
        return batch

    def start(self):
        """Run the network loop as a background task; returns the task."""
        self._started = True
        return asyncio.create_task(self.run())

    async def stop(self):
        """Leave politely: `offline` retained, and the DISCONNECT only once the broker
        acknowledged it (a DISCONNECT suppresses the last will: sent before the PUBACK, the
        broker may drop the `offline` and the device stays "online" for ever)."""
        self._running = False
        if self.session.connected:
            try:
                await self.session.publish(self.status_topic, b"offline", True)
                await self.session.wait_acked(self.session.ack_timeout_ms)
            except OSError:
                pass
        await self.session.disconnect()
        self.journal.close()
