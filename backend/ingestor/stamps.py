"""Headers the ingestor puts on each message, the arrival stamp among them.

The stamp is taken once, when the message reaches the ingestor, and travels in the
`received_at` header, so a queue redelivery carries the same time. Per device the
stamps strictly increase (a second message in the same millisecond gets the next one),
so two readings without `ts` never share a series key and overwrite each other.
"""

from __future__ import annotations

import re
import threading
import time

DEVICE_TOPIC = re.compile(r"^devices/([^/+#]+)/(.+)$")
KNOWN_KINDS = ("telemetry", "status", "status/buffer")  # what storage takes
COMMANDS = "commands"  # cloud -> device: the backend's own publishes, not forwarded


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


def topic_kind(topic: str) -> tuple[str, str] | None:
    """(client id, what follows it) for a topic under devices/<id>/, else None."""
    match = DEVICE_TOPIC.match(topic)
    return (match.group(1), match.group(2)) if match else None


def is_unknown(topic: str) -> bool:
    """A device's topic storage does not take (a typo such as devices/<id>/Telemetry):
    forwarded all the same, so that storage dead-letters it as "unknown topic" and the
    device's owner sees it, instead of the broker acking it into nowhere."""
    parts = topic_kind(topic)
    return parts is not None and parts[1] not in KNOWN_KINDS


def message_headers(topic: str, clock: ArrivalClock) -> dict | None:
    """Headers for a message on `topic`, or None when it is not forwarded (not under
    devices/<id>/, or a command)."""
    parts = topic_kind(topic)
    if parts is None or parts[1] == COMMANDS:
        return None
    client_id = parts[0]
    return {"client_id": client_id, "topic": topic, "received_at": clock.stamp(client_id)}
