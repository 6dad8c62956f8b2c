"""The MQTT broker port: make a broker admit exactly a set of accounts, with their rights.

mqtt_auth computes the desired state (every enabled device account plus the backend's
own account) and hands the whole of it to `BrokerAccess.apply()`; each adapter makes its
broker match it and closes the connections of accounts that were removed or whose
password changed. Real adapter: Mosquitto's password/ACL files + SIGHUP
(`mosquitto.py`); embedded: amqtt in this process (`embedded.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fieldline_backend.common.settings import Settings

BACKEND_USERNAME = "fieldline-backend"  # the embedded broker's backend account
RELOAD_CHECK_USERNAME = "fieldline-reload-check"  # Mosquitto adapter's reload probe
RESERVED_USERNAMES = frozenset({BACKEND_USERNAME, RELOAD_CHECK_USERNAME})

# The backend (ingestor) reads everything devices publish (telemetry, status, drop reports,
# and mistyped topics, to dead-letter them), also through the shared subscription
# $share/ingestors/..., and writes commands, the retained desired configurations, the
# retained update offers and the bundle server's chunks (docs/ota.md).
BACKEND_PUBLISH = ("devices/+/commands", "devices/+/config", "devices/+/ota", "devices/+/ota/chunk")
BACKEND_SUBSCRIBE = ("devices/+/#",)


@dataclass(frozen=True)
class BrokerAccount:
    """One MQTT account as a broker sees it. Patterns are MQTT topic filters."""

    username: str
    password_hash: str  # Mosquitto `$7$` PBKDF2-SHA512
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]  # also what it may receive
    is_device: bool = True  # devices must use their username as client id


class BrokerAccess(Protocol):
    async def apply(self, accounts: Sequence[BrokerAccount]) -> None:
        """Make the broker admit exactly `accounts`; returns once the broker applied it."""

    async def reachable(self) -> bool:
        """Is the broker up (for /readyz)?"""

    async def close(self) -> None: ...


def backend_credentials(settings: Settings) -> tuple[str, str]:
    """(username, password) the backend's own MQTT clients (the ingestor) connect with.

    With FIELDLINE_MQTT_URL they come from the URL; on the embedded broker they are
    `fieldline-backend` and a random secret kept in the data dir, made on first use.
    """
    if settings.mqtt_url:
        username, password = settings.broker_credentials
        if not username or not password:
            raise ValueError(
                "FIELDLINE_MQTT_URL has no credentials; give the backend's account as "
                "mqtt://user:password@host:port"
            )
        return username, password
    return BACKEND_USERNAME, settings.persistent_secret("embedded_broker_backend_password")


def backend_account(settings: Settings) -> BrokerAccount | None:
    """The backend's own account with its rights, as every adapter installs it."""
    from fieldline_backend.infra.broker.passwords import hash_password

    try:
        username, password = backend_credentials(settings)
    except ValueError:
        return None
    return BrokerAccount(
        username=username,
        password_hash=hash_password(password),
        publish=BACKEND_PUBLISH,
        subscribe=BACKEND_SUBSCRIBE,
        is_device=False,
    )
