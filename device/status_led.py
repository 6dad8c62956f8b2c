"""A status LED, where config.json names a pin ({"status_led": {"pin": 2}}):
fast blink while connecting, a short blip every 2 s when online, slow blink while offline
(readings are being buffered)."""

from fieldline import port
from fieldline.port import asyncio

# (on ms, off ms) per Device.state
PATTERNS = {"connecting": (100, 100), "online": (50, 1950), "offline": (1000, 1000)}


class NoLed:
    def show(self, state):
        pass

    def start(self):
        pass


class StatusLed:
    def __init__(self, pin, active_low=False):
        import machine

        self._pin = machine.Pin(pin, machine.Pin.OUT)
        self._active_low = active_low
        self.state = "offline"

    def _set(self, on):
        self._pin.value(0 if on == self._active_low else 1)

    def show(self, state):
        self.state = state

    def start(self):
        asyncio.create_task(self._blink())

    async def _blink(self):
        while True:
            on_ms, off_ms = PATTERNS.get(self.state, (1000, 1000))
            self._set(True)
            await port.sleep_ms(on_ms)
            self._set(False)
            await port.sleep_ms(off_ms)


def from_config(section):
    if not section or section.get("pin") is None:
        return NoLed()
    try:
        return StatusLed(int(section["pin"]), bool(section.get("active_low")))
    except (ImportError, AttributeError) as exc:  # the unix port's machine has no Pin
        print("fieldline: no status LED on this port (%r)" % (exc,))
        return NoLed()
