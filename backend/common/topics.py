"""The MQTT topic contract (design.md): what a device publishes under, parsed once.

`devices/<client_id>/<kind>`: the topic, not the payload, says which device sent a
message. The ingestor parses it (both paths: Mosquitto's forwarder and the embedded
broker's plugin) and puts `client_id` and `topic` in the queue message's headers;
storage takes the client id from that header and only reads the kind from the topic,
with this same parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TELEMETRY = "telemetry"
STATUS = "status"
DROP_REPORT = "status/buffer"
COMMANDS = "commands"  # cloud -> device: the backend's own publishes, never forwarded
CONFIG = "config"  # cloud -> device, retained: the desired configuration
CONFIG_REPORTED = "config/reported"  # device -> cloud: what it did with a config version
COMMAND_RESULT = "commands/result"  # device -> cloud: taken, then the outcome
OTA = "ota"  # cloud -> device, retained: the update offer (docs/ota.md)
OTA_GET = "ota/get"  # device -> bundle server: a chunk request, served outside the pipeline
OTA_CHUNK = "ota/chunk"  # bundle server -> device: one chunk of a bundle file
OTA_REPORTED = "ota/reported"  # device -> cloud: how its update goes, and its version
CLOUD_TO_DEVICE = (COMMANDS, CONFIG, OTA, OTA_CHUNK)
# What the ingestor never forwards: the backend's own publishes, and the chunk requests
# the devices service's bundle server answers directly.
NOT_FORWARDED = (*CLOUD_TO_DEVICE, OTA_GET)
# What storage takes (the reports it passes on to the devices service).
STORED_KINDS = (TELEMETRY, STATUS, DROP_REPORT, CONFIG_REPORTED, COMMAND_RESULT, OTA_REPORTED)

# A client id holds no '/', and no MQTT wildcard (it is also a topic level in the ACL).
_DEVICE_TOPIC = re.compile(r"^devices/([^/+#]+)/(.+)$")


@dataclass(frozen=True)
class DeviceTopic:
    client_id: str
    kind: str  # what follows devices/<client_id>/, typos too

    @property
    def stored(self) -> bool:
        """A kind storage takes; any other topic of a device is dead-lettered as
        "unknown topic" (forwarded all the same, so that its owner sees it)."""
        return self.kind in STORED_KINDS


def device_topic(client_id: str, kind: str) -> str:
    return f"devices/{client_id}/{kind}"


def parse_topic(topic: str) -> DeviceTopic | None:
    """The device and kind of a topic under devices/<client_id>/, else None."""
    match = _DEVICE_TOPIC.match(topic)
    return DeviceTopic(match.group(1), match.group(2)) if match else None
