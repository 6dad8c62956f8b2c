"""Commands to devices (docs/fleet.md): the order of the steps.

A command is stored (pending) first, then published on devices/<id>/commands at QoS 1,
not retained: the broker queues it in the device's persistent session while the device
is offline. If the broker does not take it now, it stays pending and is published again
when the devices service starts (the embedded broker forgets its sessions with its
process); a device runs each command id once, so a second copy is harmless. It expires
when the device has not taken it by `expires_at`; the device refuses one it receives
later (its clock permitting).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta

from fieldline_backend.common.topics import COMMANDS, device_topic
from fieldline_backend.devices.command_repository import CommandRepository
from fieldline_backend.devices.command_schemas import (
    PENDING_MAX,
    Command,
    CommandOutcome,
    CommandRequest,
)
from fieldline_backend.devices.config_schemas import compact
from fieldline_backend.infra.broker.channel import ChannelUnavailable, DeviceChannel

log = logging.getLogger(__name__)
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


class TooManyPending(Exception):
    pass


def new_command_id() -> str:
    return "cmd-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))


def command_payload(command: Command) -> bytes:
    expires_ms = int(command.expires_at.timestamp() * 1000)
    body = {"id": command.id, "name": command.name, "args": command.args, "expires": expires_ms}
    return compact(body)


class DeviceCommands:
    def __init__(self, repository: CommandRepository, channel: DeviceChannel | None):
        self.repository = repository
        self.channel = channel

    async def send(self, device_id: str, request: CommandRequest) -> Command:
        now = datetime.now(UTC)
        await asyncio.to_thread(self.repository.expire, now, device_id)
        if await asyncio.to_thread(self.repository.pending_count, device_id) >= PENDING_MAX:
            raise TooManyPending(device_id)
        command = Command(
            id=new_command_id(),
            device_id=device_id,
            name=request.name,
            args=request.args,
            status="pending",
            created_at=now,
            expires_at=now + timedelta(seconds=request.ttl_s),
        )
        await asyncio.to_thread(self.repository.add, command)
        log.info("command sent", extra={"device_id": device_id, "command": command.name})
        try:
            await self._publish(command)
        except ChannelUnavailable as error:
            log.warning("command %s stays pending: %s", command.id, error)
        return command

    async def _publish(self, command: Command) -> None:
        if self.channel is None:
            raise ChannelUnavailable("the backend has no MQTT account (FIELDLINE_MQTT_URL)")
        topic = device_topic(command.device_id, COMMANDS)
        await self.channel.publish(topic, command_payload(command))

    async def get(self, device_id: str, command_id: str) -> Command | None:
        await asyncio.to_thread(self.repository.expire, datetime.now(UTC), device_id)
        return await asyncio.to_thread(self.repository.get, device_id, command_id)

    async def recent(self, device_id: str, limit: int) -> list[Command]:
        await asyncio.to_thread(self.repository.expire, datetime.now(UTC), device_id)
        return await asyncio.to_thread(self.repository.recent, device_id, limit)

    async def record_report(self, device_id: str, outcome: CommandOutcome) -> bool:
        return await asyncio.to_thread(self.repository.report, device_id, outcome)

    async def forget(self, device_id: str) -> None:
        await asyncio.to_thread(self.repository.forget, device_id)

    async def publish_pending(self) -> None:
        """Pending commands again (at start): the broker may have lost its sessions."""
        now = datetime.now(UTC)
        await asyncio.to_thread(self.repository.expire, now)
        for command in await asyncio.to_thread(self.repository.all_pending):
            try:
                await self._publish(command)
            except ChannelUnavailable as error:
                log.warning("pending commands not published again at start: %s", error)
                return
