"""Headers the ingestor puts on each message, the arrival stamp among them.

The stamp is taken once, when the message reaches the ingestor, and travels in the
`received_at` header, so a queue redelivery carries the same time. Per device the
stamps strictly increase (a second message in the same millisecond gets the next one),
so two readings without `ts` never share a series key and overwrite each other.
"""

from __future__ import annotations

import threading
import time

from fieldline_backend.common.topics import NOT_FORWARDED, DeviceTopic, parse_topic


class ArrivalClock:
    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.lock = threading.Lock()

    def stamp(self, client_id: str) -> int:
        now = int(time.time() * 1000)
        with self.lock:
            previous = self.last.get(client_id, 0)
            stamp = now if now > previous else previous + 1
            self.last[client_id] = stamp
            if len(self.last) > 100_000:  # forget idle devices; keeps memory bounded
                self.last.clear()
                self.last[client_id] = stamp
        return stamp


def is_unknown(topic: str) -> bool:
    """A device's topic storage does not take (a typo such as devices/<id>/Telemetry):
    forwarded all the same, so that storage dead-letters it as "unknown topic" and the
    device's owner sees it, instead of the broker acking it into nowhere."""
    parsed = parse_topic(topic)
    return parsed is not None and not parsed.stored


def forwarded(topic: str) -> DeviceTopic | None:
    """The parsed topic of a message the ingestor forwards, or None when it is not
    forwarded (not under devices/<id>/, the backend's own commands, config, OTA offers
    and chunks, or a device's chunk requests, which the bundle server answers)."""
    parsed = parse_topic(topic)
    return None if parsed is None or parsed.kind in NOT_FORWARDED else parsed


def headers_for(parsed: DeviceTopic, topic: str, clock: ArrivalClock) -> dict:
    """The queue message's headers (design.md: client_id, topic, received_at)."""
    client_id = parsed.client_id
    return {"client_id": client_id, "topic": topic, "received_at": clock.stamp(client_id)}


def message_headers(topic: str, clock: ArrivalClock) -> dict | None:
    """Headers for a message on `topic`, or None when it is not forwarded."""
    parsed = forwarded(topic)
    return None if parsed is None else headers_for(parsed, topic, clock)
