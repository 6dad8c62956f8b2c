"""The Fieldline firmware app: read config.json, sample the configured sensors every
interval_s, publish through the SDK; the SDK's loop does the network.

On the unix port: cd <board dir> && MICROPYPATH=lib:. micropython main.py
"""

import sys

# With MICROPYPATH=lib:. the unix port loses its frozen modules (asyncio among them);
# a board always has them on sys.path.
if ".frozen" not in sys.path:
    sys.path.append(".frozen")

import json  # noqa: E402

import sensors  # noqa: E402
import status_led  # noqa: E402

from fieldline import Device, port  # noqa: E402
from fieldline.port import asyncio  # noqa: E402

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
    await sample_forever(device, drivers, interval_ms, bool(config.get("log_readings")))


asyncio.run(main())
