"""OTA bundles (docs/ota.md): an upload is parsed and verified whole by the bundle
format's own code (fieldline_provision.bundle, the code that builds them), then stored
with its manifest and files; the same tar twice is stored once. A bundle a running
rollout offers cannot be deleted (its devices are downloading it)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fieldline_backend.devices.bundle_repository import (
    BundleRepository,
    NewBundle,
    StoredFile,
)
from fieldline_backend.devices.ota_schemas import BundleInfo
from fieldline_provision.bundle import BundleError, read_bundle

log = logging.getLogger(__name__)


class BundleRefused(ValueError):
    """Not a bundle this server can offer: the reason, as the 422 says it."""


def parse(data: bytes) -> NewBundle:
    """The bundle in `data`; BundleRefused with the reason (CPU-bound: run in a thread)."""
    try:
        bundle = read_bundle(data)
    except BundleError as error:
        raise BundleRefused(str(error)) from error
    return NewBundle(
        id=bundle.id,
        version=bundle.version,
        mpy=bundle.mpy,
        manifest=bytes(bundle.manifest),
        size=len(data),
        files=tuple(StoredFile(f.path, f.sha256, bytes(f.data)) for f in bundle.files),
    )


class DeviceBundles:
    def __init__(self, repository: BundleRepository):
        self.repository = repository

    async def upload(self, owner_id: int, data: bytes) -> tuple[BundleInfo, bool]:
        """(the stored bundle, True when new); BundleRefused with the reason."""
        bundle = await asyncio.to_thread(parse, data)
        info, created = await asyncio.to_thread(
            self.repository.add, owner_id, bundle, datetime.now(UTC)
        )
        if created:
            log.info(
                "bundle stored",
                extra={"owner_id": owner_id, "bundle": info.id, "version": info.version},
            )
        return info, created

    async def list(self, owner_id: int, limit: int) -> list[BundleInfo]:
        return await asyncio.to_thread(self.repository.list_for, owner_id, limit)

    async def get(self, owner_id: int, bundle_id: str) -> BundleInfo | None:
        return await asyncio.to_thread(self.repository.get, owner_id, bundle_id)

    async def delete(self, owner_id: int, bundle_id: str) -> bool:
        """False when not the owner's; BundleInUse while a running rollout offers it."""
        return await asyncio.to_thread(self.repository.delete, owner_id, bundle_id)
