"""The embedded broker: amqtt 0.12.1 in this process (all-in-one `fieldline up` only).

Two amqtt plugins consult an `AccountDirectory` that mqtt_auth fills through `apply()`
(the same port Mosquitto's adapter implements): the auth plugin checks that the user
exists, that a device uses its own id as client id and that the password verifies
against the stored `$7$` hash; the topic plugin enforces each account's publish and
subscribe filters, and checks every delivery again. `apply()` closes the connections of
accounts that were removed, disabled or given a new password.

amqtt runs as `GuardedBroker` (guarded.py): CONNECT checked before amqtt sees it, last
wills under the publish rule, retained messages only to allowed subscriptions, packet
size, CONNECT timeout and connection limits as Mosquitto with the project's config.

Known limits of amqtt 0.12.1 (docs/broker.md): a denied PUBLISH is dropped but still
acknowledged (as Mosquitto does on MQTT 3.1.1); shared subscriptions deliver nothing;
MQTT 5 is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from fieldline_backend.infra.broker import BrokerAccount
from fieldline_backend.infra.broker.guarded import BrokerLimits, GuardedBroker
from fieldline_backend.infra.broker.passwords import verify_password
from fieldline_backend.infra.broker.topics import filter_covers, strip_shared_prefix, topic_matches

log = logging.getLogger(__name__)

AUTH_PLUGIN = f"{__name__}.AccountAuthPlugin"
TOPIC_PLUGIN = f"{__name__}.AccountTopicPlugin"
AUTHENTICATED_AS = "fieldline_authenticated_as"  # session attribute: (username, hash)


@dataclass
class AccountDirectory:
    """Who may connect and what they may do, as last applied by mqtt_auth."""

    accounts: dict[str, BrokerAccount] = field(default_factory=dict)

    def check(
        self, client_id: str | None, username: str | None, password: str | None
    ) -> BrokerAccount | None:
        """The account these credentials log in to, or None."""
        # An anonymous client (no username) passes a naive lookup; check explicitly.
        if not client_id or not username or password is None:
            return None
        account = self.accounts.get(username)
        if account is None:
            return None
        if account.is_device and client_id != username:
            return None
        if not verify_password(password, account.password_hash):
            return None
        return account

    def admits(self, session: Session) -> bool:
        account = self.check(session.client_id, session.username, session.password)
        if account is None:
            return False
        session.attributes[AUTHENTICATED_AS] = (account.username, account.password_hash)
        return True

    def allows(self, username: str | None, topic: str, action: Action) -> bool:
        account = self.accounts.get(username or "")
        if account is None:
            return False
        if action == Action.PUBLISH:
            return any(topic_matches(allowed, topic) for allowed in account.publish)
        if action == Action.SUBSCRIBE:
            wanted = strip_shared_prefix(topic)
            covered = (filter_covers(allowed, wanted) for allowed in account.subscribe)
            return bool(wanted) and any(covered)
        if action == Action.RECEIVE:
            return any(topic_matches(allowed, topic) for allowed in account.subscribe)
        return False

    def still_valid(self, session: Session) -> bool:
        """Does the account a connected client authenticated with still hold?"""
        username, password_hash = session.attributes.get(AUTHENTICATED_AS, (None, None))
        account = self.accounts.get(username or "")
        if account is None:
            return False
        if account.password_hash == password_hash:
            return True
        # Like Mosquitto on reload: a new hash of the same password keeps the client.
        if session.password is not None and verify_password(
            session.password, account.password_hash
        ):
            session.attributes[AUTHENTICATED_AS] = (username, account.password_hash)
            return True
        return False


class AccountAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        directory: Any = None

    async def authenticate(self, *, session: Session) -> bool:
        directory: AccountDirectory = self.config.directory
        return directory.admits(session)


class AccountTopicPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        directory: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or topic is None or action is None:
            return False
        directory: AccountDirectory = self.config.directory
        return directory.allows(session.username, topic, action)


class EmbeddedBroker:
    """The broker port on an in-process amqtt broker."""

    def __init__(
        self,
        host: str,
        port: int,
        backend: BrokerAccount,
        extra_plugins: dict[str, dict] | None = None,
        limits: BrokerLimits | None = None,
    ):
        self.host = host
        self.port = port
        self.directory = AccountDirectory(accounts={backend.username: backend})
        self.extra_plugins = dict(extra_plugins or {})
        self.limits = limits or BrokerLimits()
        self.broker: GuardedBroker | None = None

    def config(self) -> dict[str, Any]:
        plugins: dict[str, Any] = {
            AUTH_PLUGIN: {"directory": self.directory},
            TOPIC_PLUGIN: {"directory": self.directory},
        }
        plugins.update(self.extra_plugins)
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": plugins,
        }

    async def start(self) -> None:
        self.broker = GuardedBroker(self.config(), directory=self.directory, limits=self.limits)
        await self.broker.start()
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.shutdown()
            self.broker = None

    async def apply(self, accounts: Sequence[BrokerAccount]) -> None:
        self.directory.accounts = {account.username: account for account in accounts}
        await self.disconnect_invalid()

    async def disconnect_invalid(self) -> None:
        """Close every open connection whose account was removed or changed password."""
        if self.broker is None:
            return
        for session, handler in list(self.broker.connections.values()):
            if self.directory.still_valid(session):
                continue
            log.info(
                "closing the MQTT connection of %s: account removed or changed",
                session.client_id,
            )
            # Ends the client's message loop as if the socket had closed; amqtt then
            # stops the handler and closes the connection.
            await handler.handle_connection_closed()

    async def reachable(self) -> bool:
        return self.broker is not None and self.broker.transitions.state == "started"

    async def close(self) -> None:
        """mqtt_auth lets go of the port; the broker itself is stopped by the app."""
