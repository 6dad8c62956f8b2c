"""MQTT accounts: issue, rotate, disable and delete device credentials, and keep the
broker admitting exactly the enabled accounts. No HTTP, no SQL: ports passed in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fieldline_backend.infra.broker import RESERVED_USERNAMES, BrokerAccess, BrokerAccount
from fieldline_backend.infra.broker.passwords import generate_password, hash_password
from fieldline_backend.mqtt_auth import acl
from fieldline_backend.mqtt_auth.repository import AccountExists, AccountRecord, AccountRepository

log = logging.getLogger(__name__)

__all__ = ["AccountExists", "AccountNotFound", "Credentials", "DeviceInfo", "MqttAccounts"]


class AccountNotFound(Exception):
    pass


class InvalidClientId(ValueError):
    pass


@dataclass(frozen=True)
class Credentials:
    """Shown once, when issued or rotated; only the hash is kept."""

    client_id: str
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of tracebacks and debug logs
        return f"Credentials(client_id={self.client_id!r}, password=<hidden>)"


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    owner_id: str
    name: str
    metadata: dict
    enabled: bool


def _info(record: AccountRecord) -> DeviceInfo:
    return DeviceInfo(
        device_id=record.client_id,
        owner_id=record.owner_id,
        name=record.name,
        metadata=record.metadata,
        enabled=record.enabled,
    )


def _broker_account(record: AccountRecord) -> BrokerAccount:
    return BrokerAccount(
        username=record.client_id,
        password_hash=record.password_hash,
        publish=tuple(topic for access, topic in record.rules if access == acl.PUBLISH),
        subscribe=tuple(topic for access, topic in record.rules if access == acl.SUBSCRIBE),
    )


class MqttAccounts:
    def __init__(
        self,
        repository: AccountRepository,
        broker: BrokerAccess,
        backend: BrokerAccount | None,
        on_device_changed: Callable[[str], Awaitable[None]] | None = None,
    ):
        self.repository = repository
        self.broker = broker
        self._backend = backend  # the ingestor's account, installed next to the devices'
        # Tells the readers of device info (storage's enrichment cache) that a device's
        # name, tags, state or existence changed, so the next reading sees it at once.
        self.on_device_changed = on_device_changed
        # One broker update at a time, each from a fresh read of the database, so a
        # slower update never overwrites a newer one with an older picture. Changes
        # that wait for the lock are covered by one update that read the database
        # after they were committed (many devices created at once: few reloads).
        self._broker_lock = asyncio.Lock()
        self._changes = 0  # database changes committed so far
        self._applied = -1  # changes covered by the last broker update

    @property
    def backend_username(self) -> str | None:
        return self._backend.username if self._backend else None

    def _check_client_id(self, client_id: str) -> None:
        if not acl.CLIENT_ID_PATTERN.fullmatch(client_id):
            raise InvalidClientId(
                f"device id {client_id!r} cannot be an MQTT client id: use 1-64 letters, "
                "digits, '-', '_' or '.', starting with a letter or digit"
            )
        if client_id == self.backend_username or client_id in RESERVED_USERNAMES:
            raise AccountExists(client_id)  # the backend's or the broker adapter's own

    async def create(self, device_id: str, owner_id: str, name: str, metadata: dict) -> Credentials:
        self._check_client_id(device_id)
        password = generate_password()
        await asyncio.to_thread(
            self.repository.create,
            device_id,
            owner_id,
            name,
            metadata,
            hash_password(password),
            acl.device_rules(device_id),
        )
        log.info("mqtt account created", extra={"client_id": device_id})
        await self.sync_broker()
        return Credentials(client_id=device_id, username=device_id, password=password)

    async def rotate(self, client_id: str) -> Credentials:
        password = generate_password()
        record = await asyncio.to_thread(
            self.repository.update, client_id, password_hash=hash_password(password)
        )
        if record is None:
            raise AccountNotFound(client_id)
        log.info("mqtt password rotated", extra={"client_id": client_id})
        await self.sync_broker()
        return Credentials(client_id=client_id, username=client_id, password=password)

    async def update(
        self,
        client_id: str,
        enabled: bool | None = None,
        name: str | None = None,
        metadata: dict | None = None,
    ) -> DeviceInfo:
        changes = {
            key: value
            for key, value in (("enabled", enabled), ("name", name), ("metadata", metadata))
            if value is not None
        }
        record = await asyncio.to_thread(self.repository.update, client_id, **changes)
        if record is None:
            raise AccountNotFound(client_id)
        if "enabled" in changes:
            state = "enabled" if enabled else "disabled"
            log.info("mqtt account %s", state, extra={"client_id": client_id})
            await self.sync_broker()
        await self._device_changed(client_id)
        return _info(record)

    async def delete(self, client_id: str) -> None:
        if not await asyncio.to_thread(self.repository.delete, client_id):
            raise AccountNotFound(client_id)
        log.info("mqtt account deleted", extra={"client_id": client_id})
        await self.sync_broker()
        await self._device_changed(client_id)

    async def _device_changed(self, client_id: str) -> None:
        if self.on_device_changed is None:
            return
        try:
            await self.on_device_changed(client_id)
        except Exception as error:  # the readers' cache TTL still bounds the staleness
            log.warning(
                "could not tell storage that device %s changed (%s); its cached info "
                "expires on its own",
                client_id,
                error,
            )

    async def device_info(self, client_id: str) -> DeviceInfo | None:
        record = await asyncio.to_thread(self.repository.get, client_id)
        return _info(record) if record else None

    async def desired_accounts(self) -> list[BrokerAccount]:
        records = await asyncio.to_thread(self.repository.enabled_accounts)
        accounts = [_broker_account(record) for record in records]
        if self._backend is not None:
            accounts.append(self._backend)
        return accounts

    async def sync_broker(self, changed: bool = True) -> None:
        """Make the broker admit exactly the enabled accounts (and the backend's).

        `changed=True` after a committed change: returns once the broker applied a
        picture of the database that includes it. `changed=False` (start, resync)
        always applies.
        """
        if changed:
            self._changes += 1
        wanted = self._changes
        async with self._broker_lock:
            if changed and self._applied >= wanted:
                return  # an update that read the database after our change has run
            covered = self._changes
            accounts = await self.desired_accounts()
            await self.broker.apply(accounts)
            self._applied = covered
