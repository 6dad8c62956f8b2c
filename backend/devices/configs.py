"""Desired and reported configuration (docs/fleet.md): the order of the steps.

A change is merged onto the newest version and stored as the next version first, then
published retained on devices/<id>/config (QoS 1, awaited until the broker's PUBACK).
Stored first, because the database is the truth the service publishes again from at
every start (the embedded broker keeps no retained messages across a restart, and a
publish that failed is healed there too); if the publish fails the caller hears so
(503) and the version stands: the next change or start sends the newest anyway.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fieldline_backend.common.topics import CONFIG, device_topic
from fieldline_backend.devices.config_repository import ConfigRepository, VersionTaken
from fieldline_backend.devices.config_schemas import (
    ConfigReport,
    DesiredConfig,
    DeviceConfigState,
    ReportedConfig,
    compact,
    merged,
)
from fieldline_backend.infra.broker.channel import ChannelUnavailable, DeviceChannel

log = logging.getLogger(__name__)


class ConfigNotDelivered(Exception):
    """Stored as a new version, but the broker did not take it now."""

    def __init__(self, desired: DesiredConfig, why: str):
        super().__init__(why)
        self.desired = desired


def retained_payload(desired: DesiredConfig) -> bytes:
    return compact({"version": desired.version, "config": desired.config})


class DeviceConfigs:
    def __init__(self, repository: ConfigRepository, channel: DeviceChannel | None):
        self.repository = repository
        self.channel = channel

    async def state(self, device_id: str) -> DeviceConfigState:
        desired = await asyncio.to_thread(self.repository.desired, device_id)
        reported = await asyncio.to_thread(self.repository.reported, device_id)
        pending = desired is not None and (reported is None or reported.version != desired.version)
        return DeviceConfigState(desired=desired, reported=reported, pending=pending)

    async def change(self, device_id: str, changes: dict) -> DesiredConfig:
        """The new version; ValueError when the merged config is too large."""
        for _ in range(5):
            current = await asyncio.to_thread(self.repository.desired, device_id)
            config = merged(current.config if current else {}, changes)
            version = (current.version if current else 0) + 1
            try:
                desired = await asyncio.to_thread(
                    self.repository.add, device_id, version, config, datetime.now(UTC)
                )
                break
            except VersionTaken:
                continue  # a concurrent change took it: merge onto that one
        else:
            raise ChannelUnavailable("five concurrent changes took every version; try again")
        log.info("device config changed", extra={"device_id": device_id, "version": version})
        await self.publish(device_id, desired)
        return desired

    async def publish(self, device_id: str, desired: DesiredConfig | None) -> None:
        """Send the retained desired config (None clears it); ConfigNotDelivered."""
        payload = retained_payload(desired) if desired else b""
        try:
            if self.channel is None:
                raise ChannelUnavailable("the backend has no MQTT account (FIELDLINE_MQTT_URL)")
            await self.channel.publish(device_topic(device_id, CONFIG), payload, retain=True)
        except ChannelUnavailable as error:
            if desired is None:
                raise
            raise ConfigNotDelivered(desired, str(error)) from error

    async def record_report(self, device_id: str, report: ConfigReport, at: datetime) -> None:
        reported = ReportedConfig(
            version=report.version, status=report.status, error=report.error, at=at
        )
        await asyncio.to_thread(self.repository.report, device_id, reported)
        log.info(
            "device config reported",
            extra={"device_id": device_id, "version": report.version, "status": report.status},
        )

    async def forget(self, device_id: str) -> None:
        """The device is deleted: its versions go, and its retained config is cleared."""
        await asyncio.to_thread(self.repository.forget, device_id)
        try:
            await self.publish(device_id, None)
        except ChannelUnavailable as error:
            log.warning("retained config of deleted device %s not cleared: %s", device_id, error)

    async def publish_all(self) -> None:
        """Every device's newest version again (at start): the broker may have lost them."""
        published = 0
        for device_id, desired in await asyncio.to_thread(self.repository.all_desired):
            try:
                await self.publish(device_id, desired)
                published += 1
            except ConfigNotDelivered as error:
                log.warning("desired configs not published again at start: %s", error)
                return
        if published:
            log.info("published %d desired config(s) again", published)
