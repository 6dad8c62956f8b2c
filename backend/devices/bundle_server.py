"""The bundle server (docs/ota.md, "Topics"): answers a device's devices/<id>/ota/get
with one chunk on devices/<id>/ota/chunk, both QoS 0, under the backend's account.

A request is hostile until checked: at most REQUEST_MAX_BYTES of JSON, `bundle` the
bundle of the device's current offer, `path` "manifest.json" or a file of it, `offset`
0 to the file's size. Anything else gets an error chunk: one JSON line naming what was
asked and why not. Only verified bytes are served: a bundle's files are hashed when
they are loaded into the cache (a bounded LRU, so a chunk does not read the database),
and a file whose bytes do not match its hash is never sent.

paho calls in its own thread; each request is handed to the event loop
(run_coroutine_threadsafe), at most IN_FLIGHT_MAX at once: more are dropped, and the
device asks again (stop-and-wait, it has its own timeout).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fieldline_backend.common.topics import OTA_CHUNK, OTA_GET, device_topic, parse_topic
from fieldline_backend.devices.bundle_repository import BundleRepository
from fieldline_backend.devices.config_schemas import compact
from fieldline_backend.devices.ota_schemas import BUNDLE_ID
from fieldline_backend.devices.rollout_repository import RolloutRepository, ServedBundle
from fieldline_provision.bundle import CHUNK_BYTES

log = logging.getLogger(__name__)

REQUEST_MAX_BYTES = 512
PATH_MAX = 64
OFFSET_MAX = 2**31 - 1
IN_FLIGHT_MAX = 64
CACHE_MAX_BYTES = 16 * 1024 * 1024  # 32 bundles of the largest size
OFFER_TTL_S = 2.0  # another replica's change reaches this cache within this time
OFFERS_CACHED_MAX = 10_000
MANIFEST = "manifest.json"


class Refused(Exception):
    """The request cannot be served: the error chunk's reason."""


@dataclass(frozen=True)
class ChunkRequest:
    bundle: str | None
    path: str | None
    offset: int | None


@dataclass(frozen=True)
class Contents:
    manifest: bytes
    files: dict[str, bytes]  # verified files only

    @property
    def size(self) -> int:
        return len(self.manifest) + sum(len(d) for d in self.files.values())


def read_request(payload: bytes) -> tuple[ChunkRequest, str | None]:
    """The request's fields (those fit to echo in an error) and why it is refused, if so."""
    if len(payload) > REQUEST_MAX_BYTES:
        return ChunkRequest(None, None, None), f"request over {REQUEST_MAX_BYTES} bytes"
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ChunkRequest(None, None, None), "request is not JSON"
    if not isinstance(body, dict):
        return ChunkRequest(None, None, None), 'request is not {"bundle", "path", "offset"}'
    bundle, path, offset = body.get("bundle"), body.get("path"), body.get("offset")
    request = ChunkRequest(
        bundle if isinstance(bundle, str) and BUNDLE_ID.fullmatch(bundle) else None,
        path if isinstance(path, str) and len(path) <= PATH_MAX else None,
        offset if isinstance(offset, int) and not isinstance(offset, bool) else None,
    )
    if request.bundle is None:
        return request, "bundle: the 64 hex digits of the offer's bundle"
    if request.path is None:
        return request, f'path: "{MANIFEST}" or a file of the manifest'
    if request.offset is None or not 0 <= request.offset <= OFFSET_MAX:
        return request, "offset: a whole number from 0"
    return request, None


def verified(manifest: bytes, bundle_id: str, files: list) -> Contents | None:
    """The bundle's files whose bytes hash to the manifest's sha256; None when the
    manifest itself is not the bundle's."""
    if hashlib.sha256(manifest).hexdigest() != bundle_id:
        return None
    try:
        listed = {f["path"]: f["sha256"] for f in json.loads(manifest)["files"]}
    except (ValueError, KeyError, TypeError):
        return None
    good = {}
    for stored in files:
        if listed.get(stored.path) == hashlib.sha256(stored.data).hexdigest():
            good[stored.path] = stored.data
        else:
            log.error("bundle %s: %s does not match its hash; not served", bundle_id, stored.path)
    return Contents(manifest, good)


def chunk(request: ChunkRequest, data: bytes) -> bytes:
    header = {
        "bundle": request.bundle,
        "path": request.path,
        "offset": request.offset,
        "size": len(data),
    }
    start = request.offset or 0
    return compact(header) + b"\n" + data[start : start + CHUNK_BYTES]


def error_chunk(request: ChunkRequest, why: str) -> bytes:
    header = {
        "bundle": request.bundle,
        "path": request.path,
        "offset": request.offset,
        "error": why,
    }
    return compact(header) + b"\n"


class BundleServer:
    def __init__(self, rollouts: RolloutRepository, bundles: BundleRepository):
        self.rollouts = rollouts
        self.bundles = bundles
        self.listener = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.slots = threading.BoundedSemaphore(IN_FLIGHT_MAX)
        self.cache: OrderedDict[tuple[int, str], Contents] = OrderedDict()
        self.cached_bytes = 0
        self.loading = asyncio.Lock()
        self.offers: dict[str, tuple[float, ServedBundle | None]] = {}
        self.served = self.refused = self.dropped = 0

    # ---- the MQTT side ------------------------------------------------------------

    def start(self, open_listener) -> None:
        """`open_listener(topic_filter, on_message)` -> a started-on-demand TopicListener."""
        self.loop = asyncio.get_running_loop()
        self.listener = open_listener(f"devices/+/{OTA_GET}", self._on_message)
        if self.listener is not None:
            self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.close()
            self.listener = None

    def _on_message(self, topic: str, payload: bytes) -> None:
        """In paho's thread: hand the request to the loop, or drop it when too many wait."""
        parsed = parse_topic(topic)
        if parsed is None or parsed.kind != OTA_GET or self.loop is None:
            return
        if not self.slots.acquire(blocking=False):
            self.dropped += 1
            return
        future = asyncio.run_coroutine_threadsafe(self._serve(parsed.client_id, payload), self.loop)
        future.add_done_callback(lambda _f: self.slots.release())

    async def _serve(self, device_id: str, payload: bytes) -> None:
        try:
            answer = await self.answer(device_id, payload)
        except Exception:  # the database, most likely: the device asks again
            log.exception("chunk request of %s not answered", device_id)
            return
        if self.listener is not None:
            self.listener.send(device_topic(device_id, OTA_CHUNK), answer)

    # ---- the answer ---------------------------------------------------------------

    async def answer(self, device_id: str, payload: bytes) -> bytes:
        """The chunk (or error chunk) for one request of `device_id`."""
        request, why = read_request(payload)
        try:
            if why:
                raise Refused(why)
            offer = await self.offer_of(device_id)
            if offer is None or offer.bundle_id != request.bundle:
                raise Refused("no offer of this bundle for this device")
            contents = await self.contents(offer)
            if contents is None:
                raise Refused("the bundle is gone from the server")
            if request.path == MANIFEST:
                data = contents.manifest
            else:
                data = contents.files.get(request.path)
            if data is None:
                raise Refused("no such verified file in the bundle")
            if request.offset > len(data):
                raise Refused(f"offset past the end of the file ({len(data)} bytes)")
        except Refused as refused:
            self.refused += 1
            log.info("chunk request refused: %s", refused, extra={"device_id": device_id})
            return error_chunk(request, str(refused))
        self.served += 1
        return chunk(request, data)

    async def offer_of(self, device_id: str) -> ServedBundle | None:
        now = time.monotonic()
        cached = self.offers.get(device_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        served = await asyncio.to_thread(self.rollouts.served_bundle, device_id)
        if len(self.offers) >= OFFERS_CACHED_MAX:
            self.offers.clear()
        self.offers[device_id] = (now + OFFER_TTL_S, served)
        return served

    def offer_changed(self, device_id: str) -> None:
        """This process changed the device's offer: ask the database next time."""
        self.offers.pop(device_id, None)

    async def contents(self, offer: ServedBundle) -> Contents | None:
        key = (offer.owner_id, offer.bundle_id)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        async with self.loading:  # a cold bundle is read once, not once per device
            if key in self.cache:
                return self.cache[key]
            stored = await asyncio.to_thread(self.bundles.contents, *key)
            if stored is None:
                return None
            contents = await asyncio.to_thread(verified, stored[0], offer.bundle_id, stored[1])
            if contents is None:
                log.error("bundle %s: its manifest does not hash to its id", offer.bundle_id)
                return None
            self.cache[key] = contents
            self.cached_bytes += contents.size
            while self.cached_bytes > CACHE_MAX_BYTES and len(self.cache) > 1:
                _, evicted = self.cache.popitem(last=False)
                self.cached_bytes -= evicted.size
            return contents
