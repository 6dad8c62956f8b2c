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

TOPIC = re.compile(r"^devices/([^/+#]+)/(telemetry|status|status/buffer)$")


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


def message_headers(topic: str, clock: ArrivalClock) -> dict | None:
    """Headers for a message on `topic`, or None when the topic is not a device's."""
    match = TOPIC.match(topic)
    if not match:
        return None
    client_id = match.group(1)
    return {"client_id": client_id, "topic": topic, "received_at": clock.stamp(client_id)}
