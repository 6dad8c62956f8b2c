"""The embedded broker: amqtt 0.12.1 in this process (all-in-one `fieldline up` only).

Two amqtt plugins consult an `AccountDirectory` that mqtt_auth fills through `apply()`
(the same port Mosquitto's adapter implements): the auth plugin checks that the user
exists, that a device uses its own id as client id and that the password verifies
against the stored `$7$` hash; the topic plugin enforces each account's publish and
subscribe filters, and checks every delivery again. `apply()` closes the connections of
accounts that were removed, disabled or given a new password.

Known limits of amqtt 0.12.1 (docs/broker.md): a denied PUBLISH is dropped but still
acknowledged; shared subscriptions deliver nothing; MQTT 5 is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from fieldline_backend.infra.broker import BrokerAccount
from fieldline_backend.mqtt_auth.acl import filter_covers, strip_shared_prefix, topic_matches
from fieldline_backend.mqtt_auth.passwords import verify_password

log = logging.getLogger(__name__)

AUTH_PLUGIN = f"{__name__}.AccountAuthPlugin"
TOPIC_PLUGIN = f"{__name__}.AccountTopicPlugin"


@dataclass
class AccountDirectory:
    """Who may connect and what they may do, as last applied by mqtt_auth."""

    accounts: dict[str, BrokerAccount] = field(default_factory=dict)
    # client id -> (username, password hash) it authenticated with
    authenticated: dict[str, tuple[str, str]] = field(default_factory=dict)

    def admits(self, client_id: str | None, username: str | None, password: str | None) -> bool:
        # An anonymous client (no username) passes a naive lookup; check explicitly.
        if not client_id or not username or password is None:
            return False
        account = self.accounts.get(username)
        if account is None:
            return False
        if account.is_device and client_id != username:
            return False
        if not verify_password(password, account.password_hash):
            return False
        self.authenticated[client_id] = (username, account.password_hash)
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

    def still_valid(self, client_id: str) -> bool:
        """Does the account a connected client authenticated with still hold?"""
        username, password_hash = self.authenticated.get(client_id, (None, None))
        account = self.accounts.get(username or "")
        return account is not None and account.password_hash == password_hash


class AccountAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        directory: Any = None

    async def authenticate(self, *, session: Session) -> bool:
        directory: AccountDirectory = self.config.directory
        return directory.admits(session.client_id, session.username, session.password)


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
    ):
        self.host = host
        self.port = port
        self.directory = AccountDirectory(accounts={backend.username: backend})
        self.extra_plugins = dict(extra_plugins or {})
        self.broker: Broker | None = None

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
        self.broker = Broker(self.config())
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
        for client_id, (session, handler) in list(self.broker.sessions.items()):
            if session.transitions.state != "connected" or self.directory.still_valid(client_id):
                continue
            log.info("closing the MQTT connection of %s: account removed or changed", client_id)
            self.directory.authenticated.pop(client_id, None)
            # Ends the client's message loop as if the socket had closed; amqtt then
            # stops the handler and closes the connection.
            await handler.handle_connection_closed()

    async def close(self) -> None:
        """mqtt_auth lets go of the port; the broker itself is stopped by the app."""
