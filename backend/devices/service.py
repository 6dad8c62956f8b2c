"""The device registry: its rules and the order of its steps (no HTTP, no SQL here).

Every change touches two stores: our table and mqtt_auth (its table and the broker). We
never hold a database transaction across the call to mqtt_auth: in the embedded setup
both share one SQLite file, and a write transaction held open while mqtt_auth tries to
write would block it. Instead each operation orders its steps so a failure leaves no
half-made device, and undoes the first step when the second fails:

- create: mqtt_auth first (an account nobody knows the password of is harmless), then
  our row; if the row cannot be written, the account is deleted again.
- change/disable: mqtt_auth first (what admits the device is what matters), then the
  row; if the row cannot be written, mqtt_auth gets the old values back.
- delete: mqtt_auth first (revoke access), then the row; if mqtt_auth fails the device
  stays, complete, and the caller can retry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from datetime import UTC, datetime

from fieldline_backend.devices.commands import DeviceCommands
from fieldline_backend.devices.configs import DeviceConfigs
from fieldline_backend.devices.mqtt_accounts import MqttAccountsClient, MqttAuthFailed
from fieldline_backend.devices.repository import DeviceRepository
from fieldline_backend.devices.rollouts import DeviceRollouts
from fieldline_backend.devices.schemas import (
    Device,
    DeviceWithCredentials,
    MqttCredentials,
    RotatedCredentials,
)

log = logging.getLogger(__name__)

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
ID_LENGTH = 12  # 60 random bits
DEVICE_ID_PATTERN = re.compile(r"dev-[a-z2-7]{12}")


class DeviceNotFound(Exception):
    pass


def new_device_id() -> str:
    return "dev-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def matches_tags(device: Device, tags: dict[str, str]) -> bool:
    """tags are key -> text; a device matches when each metadata value reads the same
    (booleans as true/false, numbers as JSON writes them)."""
    for key, wanted in tags.items():
        if key not in device.metadata:
            return False
        value = device.metadata[key]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text != wanted:
            return False
    return True


class DeviceRegistry:
    def __init__(
        self,
        repository: DeviceRepository,
        accounts: MqttAccountsClient,
        mqtt_endpoint: dict,
        fleet: tuple[DeviceConfigs, DeviceCommands, DeviceRollouts] | None = None,
    ):
        self.repository = repository
        self.accounts = accounts
        self.mqtt_endpoint = mqtt_endpoint  # host, port, tls a device connects to
        self.fleet = fleet  # what a deleted device leaves behind: configs, commands, updates

    def _credentials(self, answer: dict) -> MqttCredentials:
        return MqttCredentials(
            **self.mqtt_endpoint,
            client_id=answer["client_id"],
            username=answer["username"],
            password=answer["password"],
        )

    async def create(self, owner_id: int, name: str, metadata: dict) -> DeviceWithCredentials:
        now = datetime.now(UTC)
        device = Device(
            id=new_device_id(),
            name=name,
            metadata=metadata,
            owner_id=owner_id,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        try:
            answer = await self.accounts.create(device.id, owner_id, name, metadata)
        except MqttAuthFailed as error:
            if error.outcome_unknown:  # it may have made the account before failing
                await self._forget_account(device.id)
            raise
        try:
            await asyncio.to_thread(self.repository.insert, device)
        except Exception:
            log.exception("device row not written; removing its MQTT account %s", device.id)
            await self._forget_account(device.id)
            raise
        log.info("device created", extra={"device_id": device.id, "owner_id": owner_id})
        return DeviceWithCredentials(**device.model_dump(), mqtt=self._credentials(answer))

    async def _forget_account(self, device_id: str) -> None:
        try:
            await self.accounts.delete(device_id)
        except MqttAuthFailed:
            log.error(
                "could not remove MQTT account %s after a failed create; it has no device "
                "row and its password was never shown; remove it by hand",
                device_id,
            )

    async def get(self, device_id: str, owner_id: int | None = None) -> Device:
        device = await asyncio.to_thread(self.repository.get, device_id)
        if device is None or (owner_id is not None and device.owner_id != owner_id):
            raise DeviceNotFound(device_id)  # another owner's device does not exist for you
        return device

    async def list(self, owner_id: int, tags: dict[str, str] | None = None) -> list[Device]:
        devices = await asyncio.to_thread(self.repository.list_for, owner_id)
        return [d for d in devices if matches_tags(d, tags or {})]

    async def change(self, device_id: str, owner_id: int, changes: dict) -> Device:
        device = await self.get(device_id, owner_id)
        if not changes:
            return device
        await self.accounts.update(device_id, changes)
        try:
            updated = await asyncio.to_thread(
                self.repository.update, device_id, changes, datetime.now(UTC)
            )
        except Exception:
            old = {"name": device.name, "metadata": device.metadata, "enabled": device.enabled}
            log.exception("device row not updated; restoring MQTT account %s", device_id)
            try:
                await self.accounts.update(device_id, {k: old[k] for k in changes})
            except MqttAuthFailed:
                log.error("could not restore MQTT account %s; retry the change", device_id)
            raise
        if updated is None:  # deleted meanwhile
            raise DeviceNotFound(device_id)
        log.info("device changed", extra={"device_id": device_id, "fields": sorted(changes.keys())})
        return updated

    async def delete(self, device_id: str, owner_id: int) -> None:
        await self.get(device_id, owner_id)
        await self.accounts.delete(device_id)
        await asyncio.to_thread(self.repository.delete, device_id)
        for part in self.fleet or ():
            await part.forget(device_id)
        log.info("device deleted", extra={"device_id": device_id})

    async def rotate(self, device_id: str, owner_id: int) -> RotatedCredentials:
        await self.get(device_id, owner_id)
        answer = await self.accounts.rotate(device_id)
        log.info("device credentials rotated", extra={"device_id": device_id})
        return RotatedCredentials(mqtt=self._credentials(answer))
