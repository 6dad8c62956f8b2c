"""Who may publish and subscribe where: the per-device rules of the design brief.

The backend's own rights and the topic-filter matching the embedded broker needs live with
the broker port (infra/broker/), which must not import a service."""

from __future__ import annotations

import re

# A device id becomes a topic level, a password-file user name and an ACL-file line:
# nothing that could split any of them (no '/', '+', '#', ':', spaces or newlines).
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

PUBLISH = "publish"
SUBSCRIBE = "subscribe"


def device_rules(client_id: str) -> list[tuple[str, str]]:
    """A device publishes only under devices/<id>/ and subscribes only to its commands, its
    desired configuration (docs/fleet.md), its update offer and its bundle chunks
    (docs/ota.md)."""
    return [
        (PUBLISH, f"devices/{client_id}/#"),
        (SUBSCRIBE, f"devices/{client_id}/commands"),
        (SUBSCRIBE, f"devices/{client_id}/config"),
        (SUBSCRIBE, f"devices/{client_id}/ota"),
        (SUBSCRIBE, f"devices/{client_id}/ota/chunk"),
    ]
