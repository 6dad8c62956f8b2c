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

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from fieldline_backend.infra.broker import BrokerAccount
from fieldline_backend.mqtt_auth.acl import filter_covers, strip_shared_prefix, topic_matches
from fieldline_backend.mqtt_auth.passwords import verify_password

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


class _RecordingReader(ReaderAdapter):
    def __init__(self, inner: ReaderAdapter):
        self.inner = inner
        self.recorded = bytearray()

    async def read(self, n: int = -1) -> bytes:
        data = await self.inner.read(n)
        self.recorded += data
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _ReplayReader(ReaderAdapter):
    """Serves bytes already read from the socket again, then reads on."""

    def __init__(self, replay: bytes, inner: ReaderAdapter):
        self.replay = bytearray(replay)
        self.inner = inner

    async def read(self, n: int = -1) -> bytes:
        if not self.replay:
            return await self.inner.read(n)
        if n == -1 or n >= len(self.replay):
            data = bytes(self.replay)
            self.replay.clear()
            rest = n - len(data) if n != -1 else 0
            return data + (await self.inner.read(rest) if rest else b"")
        data = bytes(self.replay[:n])
        del self.replay[:n]
        return data

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class GuardedBroker(Broker):
    """amqtt's Broker with two repairs for an embedded broker that admits devices.

    - amqtt 0.12.1 handles the session of a CONNECT's client id (drops it, or takes
      over its connection) before it authenticates the CONNECT, so a refused impostor
      that knows a device's id would cut the device off. Here every CONNECT is read and
      checked first; a refused one gets CONNACK 5 and never reaches amqtt's sessions.
    - Every authenticated connection is tracked while it runs (`_client_message_loop`
      lasts exactly as long), so `disconnect_invalid` can always reach it.
    """

    def __init__(self, *args: Any, directory: AccountDirectory, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.directory = directory
        self.connections: dict[int, tuple[Session, Any]] = {}

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[Any, Session]:
        recording = _RecordingReader(reader)
        try:
            connect = await ConnectPacket.from_stream(recording)
            payload = connect.payload
        except Exception:  # malformed: amqtt reads it again and answers as it does
            payload = None
        if payload is not None and payload.client_id:
            account = self.directory.check(payload.client_id, payload.username, payload.password)
            if account is None:
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
                await writer.close()
                raise MQTTError(f"CONNECT refused for client id {payload.client_id!r}")
        replay = _ReplayReader(bytes(recording.recorded), reader)
        return await super()._initialize_client_session(replay, writer, remote_address, remote_port)

    async def _client_message_loop(self, client_session: Session, handler: Any) -> None:
        self.connections[id(handler)] = (client_session, handler)
        try:
            await super()._client_message_loop(client_session, handler)
        finally:
            self.connections.pop(id(handler), None)


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
        self.broker = GuardedBroker(self.config(), directory=self.directory)
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
