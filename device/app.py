"""The Fieldline firmware app: read config.json, sample the configured sensors every
interval_s, publish through the SDK; the SDK's loop does the network. main.py runs it
(`run()`) and keeps the board alive when it fails.
"""

import json

import sensors
import status_led

from fieldline import Device, port
from fieldline.port import asyncio

CONFIG = "config.json"


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


async def sample_forever(device, drivers, interval_ms, log_readings=False):
    next_at = port.ticks_ms()
    while True:
        values = {}
        for driver in drivers:
            try:
                values.update(driver.read())
            except Exception as exc:  # noqa: BLE001 - one broken sensor must not stop the rest
                print("fieldline: sensor %s failed: %r" % (driver.name, exc))
        if values:
            try:
                seq = device.publish(values)
            except (ValueError, OSError) as exc:  # unsendable values, or flash trouble: go on
                print("fieldline: reading not stored:", exc)
            else:
                if log_readings:  # tests compare this with what arrived
                    print("fieldline: reading seq", seq)
        next_at = port.ticks_add(next_at, interval_ms)
        wait = port.ticks_diff(next_at, port.ticks_ms())
        if wait < 0:  # we fell behind (slow sensor): do not try to catch up in a burst
            next_at = port.ticks_ms()
            wait = 0
        await port.sleep_ms(wait)


def forget_boot_error():
    """The app runs: a failure main.py recorded (boot_error.txt) is history now."""
    try:
        import os

        os.remove("boot_error.txt")
    except OSError:
        pass


def on_command(topic, payload):
    # Commands are reserved for remote configuration; until then, show that they arrive.
    print("fieldline: command on %s: %r" % (topic, payload))


async def main():
    config = load_config()
    device = Device(config)
    led = status_led.from_config(config.get("status_led"))
    device.on_state = led.show
    device.on_command = on_command
    drivers = sensors.from_config(config.get("sensors") or [])
    interval_ms = int(float(config.get("interval_s", 10)) * 1000)
    print("fieldline: sampling %d sensor(s) every %d ms" % (len(drivers), interval_ms))
    device.start()
    led.start()
    forget_boot_error()
    await sample_forever(device, drivers, interval_ms, bool(config.get("log_readings")))


def run():
    asyncio.run(main())
