"""Reconnect policy: exponential backoff with full jitter, a cap, and a reset once a
connection has proven stable.

Neither umqtt.robust nor mqtt_as jitters; a fleet that lost its broker together would then
come back in lockstep. The generator is seeded per device, and is our own xorshift so the
same seed gives the same schedule on MicroPython and CPython (tests check exact values).
"""


def seed_for(device_id, boot=0):
    """A 32-bit seed from the device id (FNV-1a) mixed with the boot counter."""
    h = 2166136261
    for byte in device_id.encode() if isinstance(device_id, str) else device_id:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    h ^= (boot * 2654435761) & 0xFFFFFFFF
    return h or 1


class Backoff:
    """delay_ms() for attempt n is uniform in [0, min(cap, base * 2**n)] ("full jitter")."""

    def __init__(self, seed, base_ms=1000, cap_ms=60000):
        if base_ms <= 0 or cap_ms < base_ms:
            raise ValueError("backoff needs 0 < base_ms <= cap_ms")
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.attempt = 0
        self._state = (seed & 0xFFFFFFFF) or 1

    def _next_random(self):
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x

    def ceiling_ms(self, attempt):
        """The upper bound of the delay before attempt `attempt` (0-based)."""
        if attempt >= 31:
            return self.cap_ms
        return min(self.cap_ms, self.base_ms << attempt)

    def delay_ms(self):
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = self.ceiling_ms(self.attempt)
        self.attempt += 1
        return self._next_random() % (ceiling + 1)

    def refused_delay_ms(self):
        """The broker refused us (bad credentials): wait the full cap, never less."""
        self.attempt += 1
        return self.cap_ms

    def reset(self):
        self.attempt = 0
