"""Who may publish and subscribe where: the per-device rules of the design brief and the
topic-filter matching the embedded broker needs (Mosquitto does its own)."""

from __future__ import annotations

import re

# A device id becomes a topic level, a password-file user name and an ACL-file line:
# nothing that could split any of them (no '/', '+', '#', ':', spaces or newlines).
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

PUBLISH = "publish"
SUBSCRIBE = "subscribe"


def device_rules(client_id: str) -> list[tuple[str, str]]:
    """A device publishes only under devices/<id>/ and subscribes only to its commands."""
    return [(PUBLISH, f"devices/{client_id}/#"), (SUBSCRIBE, f"devices/{client_id}/commands")]


# The backend (ingestor) reads everything devices publish (telemetry, status, drop reports,
# and mistyped topics, to dead-letter them), also through the shared subscription
# $share/ingestors/..., and writes commands.
BACKEND_PUBLISH = ("devices/+/commands",)
BACKEND_SUBSCRIBE = ("devices/+/#",)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of a concrete topic against a filter with + and #."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def filter_covers(allowed: str, requested: str) -> bool:
    """True when every topic the `requested` filter can match is matched by `allowed`."""
    allowed_levels = allowed.split("/")
    requested_levels = requested.split("/")
    for index, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if index >= len(requested_levels):
            return False
        wanted = requested_levels[index]
        if wanted == "#":
            return False
        if level == "+":
            continue
        if wanted == "+" or wanted != level:
            return False
    return len(allowed_levels) == len(requested_levels)


def strip_shared_prefix(topic_filter: str) -> str:
    """`$share/<group>/<filter>` -> `<filter>`: rights apply to the filter itself."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return topic_filter
