"""Rollouts of OTA bundles (docs/ota.md): the order of the steps.

A rollout is stored with its canaries `offered` first, then each offer is published
retained on devices/<id>/ota (QoS 1, awaited until the broker's PUBACK). The database
is the truth: the offers devices hold are published again when the devices service
starts (the embedded broker keeps no retained message across a restart), so a publish
that failed is healed there. A device's reports (storage passes them on) move its
entry and, in the same transaction, the rollout (rollout_rules); what that calls for
is published after it: the next stage's offers, an empty retained message where an
offer was withdrawn (halted, cancelled, not downloading yet) or spent (the device's
entry finished).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from fieldline_backend.common.topics import OTA, device_topic
from fieldline_backend.devices.bundle_repository import BundleRepository
from fieldline_backend.devices.config_schemas import compact
from fieldline_backend.devices.models import OtaRollout
from fieldline_backend.devices.ota_schemas import (
    DeviceUpdate,
    OtaReport,
    Rollout,
    RolloutRequest,
)
from fieldline_backend.devices.rollout_repository import Offer, Publishes, RolloutRepository
from fieldline_backend.devices.rollout_rules import pick_canaries
from fieldline_backend.infra.broker.channel import ChannelUnavailable, DeviceChannel

log = logging.getLogger(__name__)
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


class BundleNotFound(Exception):
    pass


class DevicesNotFound(Exception):
    def __init__(self, devices: list[str]):
        super().__init__(", ".join(devices))
        self.devices = devices


def new_rollout_id() -> str:
    return "ro-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(16))


def offer_payload(offer: Offer | None) -> bytes:
    return compact(offer.payload()) if offer else b""


class DeviceRollouts:
    def __init__(
        self,
        repository: RolloutRepository,
        bundles: BundleRepository,
        channel: DeviceChannel | None,
    ):
        self.repository = repository
        self.bundles = bundles
        self.channel = channel
        # One change at a time in this process: SQLite has one writer, and a rollout's
        # step must see every entry the change before it wrote (PostgreSQL: row lock).
        self.lock = asyncio.Lock()
        self.offers_changed: Callable[[str], None] = lambda device_id: None  # bundle server

    async def create(self, owner_id: int, request: RolloutRequest) -> Rollout:
        """Store and offer to the canaries; BundleNotFound, DevicesNotFound, DevicesBusy."""
        bundle = await asyncio.to_thread(self.bundles.get, owner_id, request.bundle_id)
        if bundle is None:
            raise BundleNotFound(request.bundle_id)
        owned = await asyncio.to_thread(self.repository.owned, owner_id, request.devices)
        missing = [d for d in request.devices if d not in owned]
        if missing:
            raise DevicesNotFound(missing)
        now = datetime.now(UTC)
        record = OtaRollout(
            id=new_rollout_id(),
            owner_id=owner_id,
            bundle_id=bundle.id,
            version=bundle.version,
            state="canary",
            canary_fraction=request.canary_fraction,
            max_failure_ratio=request.max_failure_ratio,
            allow_downgrade=request.allow_downgrade,
            created_at=now,
            updated_at=now,
        )
        canaries = pick_canaries(request.devices, request.canary_fraction)
        async with self.lock:
            rollout, publishes = await asyncio.to_thread(
                self.repository.create, record, canaries, request.devices
            )
        log.info(
            "rollout created",
            extra={"rollout": rollout.id, "bundle": bundle.id, "devices": len(request.devices)},
        )
        await self._publish(publishes)
        return rollout

    async def report(self, device_id: str, report: OtaReport, at: datetime) -> None:
        async with self.lock:
            ignored, publishes = await asyncio.to_thread(
                self.repository.report, device_id, report, at
            )
        if ignored:  # info: a device repeats its last report at every connect
            log.info(
                "ota report ignored: %s",
                ignored,
                extra={"device_id": device_id, "rollout": report.rollout, "state": report.state},
            )
            return
        if report.state != "running":
            log.info(
                "ota report",
                extra={"device_id": device_id, "rollout": report.rollout, "state": report.state},
            )
        await self._publish(publishes)

    async def cancel(self, owner_id: int, rollout_id: str) -> Rollout | None:
        async with self.lock:
            try:
                rollout, publishes = await asyncio.to_thread(
                    self.repository.cancel, owner_id, rollout_id, datetime.now(UTC)
                )
            except KeyError:
                return None
        await self._publish(publishes)
        return rollout

    async def get(self, owner_id: int, rollout_id: str) -> Rollout | None:
        return await asyncio.to_thread(self.repository.get, owner_id, rollout_id)

    async def list(self, owner_id: int, limit: int) -> list[Rollout]:
        return await asyncio.to_thread(self.repository.list_for, owner_id, limit)

    async def update_of(self, device_id: str) -> DeviceUpdate:
        return await asyncio.to_thread(self.repository.update_of, device_id)

    async def forget(self, device_id: str) -> None:
        """The device is deleted: its entries go (its retained offer with it), and the
        rollouts it held back move on."""
        async with self.lock:
            publishes = await asyncio.to_thread(
                self.repository.forget, device_id, datetime.now(UTC)
            )
        publishes.clear.append(device_id)
        await self._publish(publishes)

    async def publish_all(self) -> None:
        """Every offer devices hold, again (at start): the broker may have lost them."""
        offers = await asyncio.to_thread(self.repository.offers)
        for device_id, offer in offers:
            if not await self._send(device_id, offer):
                log.warning("update offers not published again at start")
                return
        if offers:
            log.info("published %d update offer(s) again", len(offers))

    async def _publish(self, publishes: Publishes) -> None:
        sends = [(d, publishes.offer) for d in publishes.offer_to]
        sends += [(d, None) for d in publishes.clear]
        for device_id, _ in sends:
            self.offers_changed(device_id)
        for device_id, offer in sends:
            if not await self._send(device_id, offer):
                # Stored all the same: the offers are published again at the next start.
                log.warning("%d update offer change(s) not published now", len(sends))
                return

    async def _send(self, device_id: str, offer: Offer | None) -> bool:
        try:
            if self.channel is None:
                raise ChannelUnavailable("the backend has no MQTT account (FIELDLINE_MQTT_URL)")
            topic = device_topic(device_id, OTA)
            await self.channel.publish(topic, offer_payload(offer), retain=True)
            return True
        except ChannelUnavailable as error:
            log.warning("update offer for %s not published: %s", device_id, error)
            return False
