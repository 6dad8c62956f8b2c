"""Device info for enrichment: asked of mqtt_auth by client id, cached for a short time.

Freshness: entries live `ttl` seconds (FIELDLINE_STORAGE_DEVICE_CACHE_SECONDS, 30 s by
default); unknown devices only 5 s, so a device made a moment ago is found soon. A
change takes effect at once when mqtt_auth (or anyone) calls
`POST /internal/telemetry/device-cache/invalidate`, which drops the entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

UNKNOWN_TTL = 5.0


class DirectoryUnavailable(Exception):
    """mqtt_auth cannot answer now; the storage worker holds the batch and retries."""


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    owner_id: str
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


class DeviceDirectory:
    def __init__(self, client_factory: Callable[[], httpx.Client], ttl: float = 30.0):
        self.client_factory = client_factory
        self.ttl = ttl
        self.cache: dict[str, tuple[float, DeviceInfo | None]] = {}
        self.lock = threading.Lock()
        self._client: httpx.Client | None = None

    def lookup(self, client_id: str) -> DeviceInfo | None:
        """The device behind a client id, None when mqtt_auth does not know it."""
        now = time.monotonic()
        with self.lock:
            cached = self.cache.get(client_id)
        if cached and cached[0] > now:
            return cached[1]
        info = self._fetch(client_id)
        with self.lock:
            self.cache[client_id] = (now + (self.ttl if info else UNKNOWN_TTL), info)
        return info

    def _fetch(self, client_id: str) -> DeviceInfo | None:
        if self._client is None:
            self._client = self.client_factory()
        try:
            response = self._client.get(f"/internal/devices/by-client/{client_id}")
        except httpx.HTTPError as error:
            raise DirectoryUnavailable(f"mqtt_auth unreachable: {error!r}") from error
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryUnavailable(
                f"mqtt_auth answered {response.status_code} for device {client_id!r}"
            )
        body = response.json()
        return DeviceInfo(
            device_id=str(body["device_id"]),
            owner_id=str(body["owner_id"]),
            name=str(body.get("name") or ""),
            metadata=dict(body.get("metadata") or {}),
            enabled=bool(body.get("enabled", True)),
        )

    def forget(self, client_id: str | None = None) -> None:
        with self.lock:
            if client_id is None:
                self.cache.clear()
            else:
                self.cache.pop(client_id, None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
