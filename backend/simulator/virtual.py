"""One virtual device: the real SDK `Device` (journal, offline buffer, backoff, QoS 1
session) on CPython, with a radio that can go out of range and counters for people.

Only the Wi-Fi is replaced: on a board `port.Wifi` joins an access point; here `Radio`
says whether the access point is in range. Going out of range also cuts the open link
abruptly (no DISCONNECT), as a lost access point does, so the broker publishes the
device's last will and the SDK buffers in its journal until the radio is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from pathlib import Path

import fieldline.device
import fieldline.port
from fieldline import Device
from fieldline.commands import Commands
from fieldline.ota import Updater
from fieldline.remote import RemoteConfig
from fieldline_backend.simulator.virtual_board import VirtualBoard

log = logging.getLogger("fieldline_backend.simulator.sdk")


# Which device a log line comes from: each device's network task runs in a context
# copied at its start (asyncio does that), where this names it.
_device_id: contextvars.ContextVar[str] = contextvars.ContextVar("device_id", default="")


def _sdk_log(*args) -> None:
    log.debug("%s %s", _device_id.get(), " ".join(str(arg) for arg in args))


# The SDK prints its progress ("fieldline: online", retry delays) as a board would on
# its console; a host with hundreds of devices sends it to the log file instead.
fieldline.device.log = _sdk_log
# A board collects garbage before each batch and after each lost link, to keep its small
# heap in one piece. In a host process holding hundreds of devices (and the services, in
# the demo) each of those is a full CPython collection of a large heap: measured, 50
# devices dropping their links 20 times each spent 30 of 40 s in gc. CPython's own
# generational collector is enough here.
fieldline.port.collect_garbage = lambda: None


class Radio:
    """Stands in for `port.Wifi` (same two methods): the access point is in range or not."""

    def __init__(self) -> None:
        self.in_range = True

    def is_connected(self) -> bool:
        return self.in_range

    async def connect(self, timeout_ms: int = 15000) -> bool:
        return self.in_range


def sdk_config(device_id: str, mqtt: dict, state_dir: Path, ca_pem: str = "") -> dict:
    """The config.json `provision` would write, for a device living in state_dir."""
    return {
        "device_id": device_id,
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {
            "host": mqtt["host"],
            "port": int(mqtt["port"]),
            "tls": bool(mqtt.get("tls")),
            "ca": ca_pem,
            "client_id": mqtt.get("client_id") or device_id,
            "username": mqtt.get("username") or device_id,
            "password": mqtt["password"],
            "keepalive": 30,
        },
        "buffer": {"dir": str(state_dir), "ram": 50, "flash_bytes": 262144, "batch": 25},
        # A host on a LAN: retry soon (a board's 60 s cap would make the demo look dead).
        "backoff": {"base_ms": 300, "cap_ms": 3000, "stable_s": 10},
        "ntp_wait_s": 0,
    }


class VirtualDevice:
    def __init__(self, device_id: str, name: str, config: dict) -> None:
        self.device_id = device_id
        self.name = name
        Path(config["buffer"]["dir"]).mkdir(parents=True, exist_ok=True)
        self.sdk = Device(config)
        self.radio = Radio()
        self.sdk.wifi = self.radio
        self.sdk.on_state = self._on_state
        # Fleet management through the SDK's own code (docs/fleet.md): remote config
        # (a virtual device has simulated sensors only) and commands.
        self.interval_s: float | None = None  # from a remote config, when one applied
        self.remote = RemoteConfig(self.sdk, self.apply_config)
        if self.remote.config:
            self.apply_config(self.remote.config)
        self.commands = Commands(self.sdk)
        self.commands.command("reboot")(self._reboot)
        # OTA updates through the SDK's own Updater; the board's files and its loader
        # (device/loader.py, the same file a board runs) live in <state dir>/board.
        self.board = VirtualBoard(Path(config["buffer"]["dir"]))
        self.updater = self._new_updater()
        self.sent = 0  # readings published (stored in the journal) by this process
        self.acknowledged = 0
        self.times_online = 0
        self.first_online = asyncio.Event()
        self._ends: deque[int] = deque()  # journal end position of each unacked reading
        self._task: asyncio.Task | None = None

    # ---- sampling ----------------------------------------------------------------------

    def publish(self, values: dict) -> int:
        seq = self.sdk.publish(values)
        self.sent += 1
        self._ends.append(self.sdk.journal.end_pos)
        return seq

    @property
    def buffered(self) -> int:
        """Readings sent by this process and not yet acknowledged by the broker."""
        ack = self.sdk.journal.ack_pos
        while self._ends and self._ends[0] <= ack:
            self._ends.popleft()
            self.acknowledged += 1
        return len(self._ends)

    @property
    def busy(self) -> bool:
        """Something still waits in the journal or for its PUBACK."""
        return bool(self.sdk.session.inflight) or self.sdk.buffer.has_unsent()

    @property
    def reconnects(self) -> int:
        return max(0, self.times_online - 1)

    @property
    def dropped(self) -> int:
        """Readings the journal threw away because it was full (the SDK reports them)."""
        return self.sdk.journal.dropped

    def _on_state(self, state: str) -> None:
        if state == "online":
            self.times_online += 1
            self.first_online.set()

    # ---- fleet management -------------------------------------------------------------

    def apply_config(self, config: dict) -> None:
        """A remote config: checked whole, then the sampling interval follows it."""
        unknown = set(config) - {"interval_s", "sensors", "app"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        interval = config.get("interval_s")
        if interval is not None and not (
            isinstance(interval, int | float) and 1 <= interval <= 86400
        ):
            raise ValueError(f"interval_s must be 1-86400 seconds, got {interval!r}")
        for sensor in config.get("sensors") or []:
            if sensor.get("kind") != "simulated":
                raise ValueError(f"a virtual device has no {sensor.get('kind')!r} sensor")
        self.interval_s = float(interval) if interval is not None else None

    def _reboot(self, args: dict) -> dict:
        """A virtual device cannot restart its process (it shares it with the fleet): it
        drops its link once the answer is out, and reconnects as after a reboot."""
        asyncio.get_running_loop().call_later(1.0, self.drop_link, "reboot (command)")
        return {"rebooting": True, "virtual": True}

    def _new_updater(self) -> Updater:
        updater = Updater(self.sdk, self.board.trial_s, self.board.root)
        updater.reset = self._reboot_into_update
        return updater

    def _reboot_into_update(self) -> None:
        """The Updater staged a version and would reset the board: this Updater stops, the
        loader switches (and checks that the new app imports), then the device comes back
        as after a reboot, with a new Updater that confirms or reports the rollback."""
        self.sdk.ota = None
        asyncio.get_running_loop().create_task(self._boot_again())

    async def _boot_again(self) -> None:
        token = _device_id.set(self.device_id)
        try:
            self.drop_link("reboot (OTA update)")
            await self.board.boot()
            self.sdk.acked_batches = 0  # "its first reading after the boot"
            self.updater = self._new_updater()
            if self.board.on_trial:
                asyncio.get_running_loop().create_task(self._trial_deadline())
        except Exception:  # noqa: BLE001 - a fleet of hundreds must not die of one device
            log.exception("%s: the virtual reboot failed", self.device_id)
        finally:
            _device_id.reset(token)

    async def _trial_deadline(self) -> None:
        """main.py's deadline on a board: not confirmed within trial_s, rolled back."""
        await asyncio.sleep(self.board.trial_s)
        if self.board.roll_back_if_on_trial(f"not confirmed within {self.board.trial_s:.0f} s"):
            self._reboot_into_update()

    # ---- faults ------------------------------------------------------------------------

    def out_of_range(self) -> None:
        self.radio.in_range = False
        self.drop_link("access point out of range")

    def back_in_range(self) -> None:
        self.radio.in_range = True

    def drop_link(self, why: str = "simulated fault") -> None:
        """Cut the connection without a DISCONNECT; the SDK reconnects with backoff."""
        if self.sdk.session.connected:
            self.sdk.session.kill(OSError(104, why))

    # ---- life --------------------------------------------------------------------------

    def start(self) -> None:
        token = _device_id.set(self.device_id)
        try:
            self._task = self.sdk.start()
        finally:
            _device_id.reset(token)

    async def stop(self, timeout: float = 2.0) -> None:
        """Polite leave (`offline` retained, DISCONNECT), journal closed with its ack."""
        try:
            await asyncio.wait_for(self.sdk.stop(), timeout)
        except (TimeoutError, OSError):
            self.sdk.journal.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):  # cancelled, or failed already
                await self._task
