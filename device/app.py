"""The Fieldline firmware app: read config.json, sample the configured sensors every
interval_s, publish through the SDK; the SDK's loop does the network. main.py runs it
(`run()`) and keeps the board alive when it fails.

Remote configuration (docs/fleet.md): a new interval_s, sensors or app settings from the
server are checked whole (every sensor must start) and switched to between two readings,
without a reboot; a config that does not work is rejected and the old one stays.

OTA updates (docs/ota.md): the Updater downloads an offered bundle, stages it and
reboots into main.py's loader; after that boot it confirms the new version once it is
online and its first readings were acknowledged (config.json `ota.trial_s`: how long the
loader waits for that).
"""

import json

import sensors
import status_led

from fieldline import Device, port
from fieldline.commands import Commands
from fieldline.ota import Updater
from fieldline.port import asyncio
from fieldline.remote import RemoteConfig

CONFIG = "config.json"
REMOTE_KEYS = ("interval_s", "sensors", "app")


def load_config(path=CONFIG):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        print("fieldline: no %s on the board; run `provision` to write it" % path)
        raise
    except ValueError as exc:
        print("fieldline: %s is not valid JSON (%r); run `provision` again" % (path, exc))
        raise


class Settings:
    """What the sampling loop reads each round; a remote config replaces it whole."""

    def __init__(self, config, strict=False):
        interval = config.get("interval_s", 10)
        # (The server bounds a remote interval to 1-86400 s; tests boot faster than 1 s.)
        if not isinstance(interval, (int, float)) or not 0 < interval <= 86400:
            raise ValueError("interval_s must be a number of seconds up to 86400: %r" % (interval,))
        app = config.get("app") or {}
        if not isinstance(app, dict):
            raise ValueError("app must be an object")
        specs = config.get("sensors") or []
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise ValueError("sensors must be a list of objects")
        self.drivers = sensors.from_config(specs, strict)
        if strict and not self.drivers:
            raise ValueError("no sensor: give at least one")
        self.interval_ms = int(float(interval) * 1000)
        self.app = app  # the user's own settings, for their code


class App:
    def __init__(self, config):
        self.config = config
        self.log_readings = bool(config.get("log_readings"))
        self.device = Device(config)
        self.remote = RemoteConfig(self.device, self.apply, config.get("config_version", 0))
        self.settings = Settings(self.remote.over(config))
        self.changed = asyncio.Event()
        self.commands = Commands(self.device)  # ping, sync_time, flush, reboot, and:
        self.commands.command("sample")(self.sample_now)
        ota = config.get("ota") or {}
        self.updater = Updater(self.device, float(ota.get("trial_s") or 600))

    def apply(self, remote_config):
        """A config from the server: build everything first, then switch (or raise)."""
        for key in remote_config:
            if key not in REMOTE_KEYS:
                raise ValueError("unknown setting %r (this app takes %s)" % (key, REMOTE_KEYS))
        merged = dict(self.config)
        merged.update(remote_config)
        self.settings = Settings(merged, strict=True)
        self.changed.set()
        print(
            "fieldline: now sampling %d sensor(s) every %d ms"
            % (len(self.settings.drivers), self.settings.interval_ms)
        )

    def sample_now(self, args=None):
        """One reading of every sensor, stored: {"seq", "values"} (seq None when nothing
        was stored). Also the `sample` command, with that as its result."""
        values = {}
        for driver in self.settings.drivers:
            try:
                values.update(driver.read())
            except Exception as exc:  # noqa: BLE001 - one broken sensor must not stop the rest
                print("fieldline: sensor %s failed: %r" % (driver.name, exc))
        seq = None
        if values:
            try:
                seq = self.device.publish(values)
            except (ValueError, OSError) as exc:  # unsendable values, or flash trouble
                print("fieldline: reading not stored:", exc)
            else:
                if self.log_readings:  # tests compare this with what arrived
                    print("fieldline: reading seq", seq)
        return {"seq": seq, "values": values}

    async def sample_forever(self):
        next_at = port.ticks_ms()
        while True:
            self.sample_now()
            next_at = port.ticks_add(next_at, self.settings.interval_ms)
            wait = port.ticks_diff(next_at, port.ticks_ms())
            if wait < 0:  # we fell behind (slow sensor): do not try to catch up in a burst
                next_at = port.ticks_ms()
                wait = 0
            self.changed.clear()
            try:  # a new config ends the wait: its interval counts from now
                await asyncio.wait_for(self.changed.wait(), wait / 1000)
                next_at = port.ticks_ms()
            except asyncio.TimeoutError:
                pass


def forget_boot_error():
    """The app runs: a failure main.py recorded (boot_error.txt) is history now."""
    try:
        import os

        os.remove("boot_error.txt")
    except OSError:
        pass


async def main():
    config = load_config()
    app = App(config)
    led = status_led.from_config(config.get("status_led"))
    app.device.on_state = led.show
    print(
        "fieldline: sampling %d sensor(s) every %d ms (config version %d)"
        % (len(app.settings.drivers), app.settings.interval_ms, app.remote.version)
    )
    app.device.start()
    led.start()
    forget_boot_error()
    await app.sample_forever()


def run():
    asyncio.run(main())
