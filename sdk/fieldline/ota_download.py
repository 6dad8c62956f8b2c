"""One bundle's download for the Updater (fieldline.ota; docs/ota.md), imported only while
it runs: the manifest (verified against the bundle id), then each file, stop-and-wait in
chunks of at most 1,024 bytes: ask on devices/<id>/ota/get (QoS 0), one chunk comes back
on ota/chunk, ask again after RETRY_MS without one. A file's length on flash is how far
it got: after a power cut the download resumes there (the hash of what flash holds is
computed again). A file failing its SHA-256 is fetched again from 0, twice at most.
Heap: one 1,024-byte buffer (re-hashing from flash) and the manifest's list of files.
"""

import binascii
import hashlib
import json
import os
import sys

from fieldline import port, wire
from fieldline.journal import _makedirs, _size
from fieldline.ota import log, read_json, remove, rmtree

try:
    from gc import mem_alloc  # MicroPython: the heap in use, for the staged line
except ImportError:  # CPython
    mem_alloc = None  # type: ignore[assignment]

CHUNK = 1024  # bytes of a file per chunk (the server sends at most this)
RETRY_MS = 3000  # no chunk within this: ask again
FETCHES = 3  # a file whose hash fails is fetched again from 0, twice at most
ERRORS = 5  # error chunks in a row for the same request: failed
FORBIDDEN = ("main.py", "boot.py", "config.json", "loader.py")
PATH_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-./"


def board_mpy():
    """The .mpy version this interpreter loads ("6.3"); None where it runs source only."""
    mpy = getattr(sys.implementation, "_mpy", None)
    if mpy is None:
        return None
    return "%d.%d" % (mpy & 0xFF, (mpy >> 8) & 3)


def bad_path(path):
    """Why a manifest path may not go on the board, or None."""
    if not isinstance(path, str) or not 0 < len(path) <= 64 or path in FORBIDDEN:
        return "path %r not allowed" % (path,)
    if path[0] == "/" or ".." in path.split("/") or "//" in path:
        return "path %r not allowed" % (path,)
    for c in path:
        if c not in PATH_CHARS:
            return "path %r not allowed" % (path,)
    if not (path.endswith(".py") or path.endswith(".mpy") or path.endswith(".json")):
        return "path %r not allowed" % (path,)
    return None


def parse_version(text):
    """'1.4.0' -> (1, 4): 1 to 4 whole numbers of at most 5 digits; trailing zeros do not
    count ('1.0' == '1'). ValueError otherwise."""
    parts = str(text).split(".")
    if not 1 <= len(parts) <= 4:
        raise ValueError("bad version %r" % (text,))
    numbers = []
    for part in parts:
        if not part or len(part) > 5 or not part.isdigit():
            raise ValueError("bad version %r" % (text,))
        numbers.append(int(part))
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def refusal(version, running, allow):
    """Why an offer of `version` is not taken by a board running `running`, or None."""
    try:
        offered = parse_version(version)
    except ValueError:
        return "bad version %r" % (version,)
    try:
        current = parse_version(running)
    except ValueError:
        current = (0,)
    if offered <= current and not allow:
        return "version %s is not above the running %s (allow_downgrade is off)" % (
            version,
            running,
        )
    return None


def take_offer(updater, offer, manifest_size, allow):
    """An offer the Updater has not seen: refused (failed), or its download started."""
    if updater.job is not None:
        updater.job.close()  # another bundle now
        updater.job = None
    why = refusal(offer[1], updater.version, allow)
    if why:
        fail(updater, offer, why)
        return
    record = updater.record
    resume = record.get("state") == "downloading" and record.get("bundle") == offer[0]
    updater.job = Download(updater, offer, manifest_size)
    updater.job.begin(resume)


def withdrawn(updater):
    """An empty offer: no offer (cancelled). A download in progress is dropped."""
    log("offer withdrawn")
    updater.drop_work()
    updater.clean()
    if updater.state() == "downloading":
        remove(updater.state_path)
        updater.record = {}


def fail(updater, offer, error):
    log("update to", offer[1], "failed:", error)
    updater.drop_work()
    updater.set_record("failed", offer, error)
    updater.report("failed", offer[1], offer[2], None, error)
    updater.clean()


def staged(updater, offer, files, stats):
    """Every file verified: staged for the loader, then the reboot."""
    updater.drop_work()
    updater.stats = stats
    updater.set_record("staged", offer, None, files=files, trial_s=updater.trial_s)
    updater.report("staged", offer[1], offer[2])
    updater.report("rebooting", offer[1], offer[2])
    updater._reboot_at = port.ticks_ms()


class Download:
    def __init__(self, updater, offer, manifest_size):
        self.updater = updater
        self.offer = offer  # (bundle id, version, rollout)
        self.dir = updater.dir
        self.manifest_size = manifest_size
        self.files = []  # the manifest's [path, size, sha256], once verified
        self.index = -1  # the file being fetched; -1: the manifest
        self.path = ""
        self.size = 0
        self.offset = 0
        self.fetches = 0
        self.errors = 0
        self.total = 0
        self.done = 0  # bytes of the verified files
        self.progress = -1
        self.stats = {"requests": 0, "chunks": 0, "bytes": 0, "ms": 0, "heap": 0}
        self._hash = hashlib.sha256()
        self._file = None
        self._buf = None
        self._want = False
        self._started = port.ticks_ms()
        self._asked = self._started

    def begin(self, resume):
        if not resume:
            rmtree(self.dir + "/new")
            remove(self.dir + "/manifest.json")
            _makedirs(self.dir)
            self.updater.set_record("downloading", self.offer)
        log("offer of", self.offer[1], "resumed" if resume else "taken")
        self._open()
        self._advance()

    def again(self):
        self._want = True

    def close(self):
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    # ---- files ------------------------------------------------------------------------

    def _entry(self, index):
        """(board path, size, sha256, where it is downloaded to) of the manifest (-1) or a
        file."""
        if index < 0:
            return "manifest.json", self.manifest_size, self.offer[0], self.dir + "/manifest.json"
        path, size, sha = self.files[index]
        return path, size, sha, self.dir + "/new/" + path

    def _open(self):
        """Start (or resume) the current file: as far as flash has it, its hash so far."""
        path, size, _, local = self._entry(self.index)
        self.path, self.size = path, size
        _makedirs(local[: local.rfind("/")])
        have = _size(local)
        if have > size:
            remove(local)
            have = 0
        self._hash = hashlib.sha256()
        if have:
            self._rehash(local, have)
        self.offset = have
        self._file = open(local, "ab") if have < size else None
        self.errors = 0

    def _rehash(self, local, have):
        if self._buf is None:
            self._buf = bytearray(CHUNK)
        buf = self._buf
        with open(local, "rb") as f:
            while have > 0:
                n = f.readinto(buf)
                if not n:
                    break
                self._hash.update(memoryview(buf)[: min(n, have)])
                have -= n

    def _advance(self):
        """After a chunk or a (re)start: verify what is complete, go on to the next file,
        stage when every file is verified; else ask for the next chunk."""
        while True:
            if self.offset < self.size:
                self._want = True
                self._progress()
                return
            verdict = self._verify()
            if verdict is None:
                return  # failed
            if verdict:
                if self.index < 0 and not self._read_manifest():
                    return
                self.done += self.size if self.index >= 0 else 0
                self.index += 1
                self.fetches = 0
                if self.index >= len(self.files):
                    self._stage()
                    return
            self._open()

    def _verify(self):
        """The file is complete: True when it hashes right; False: fetch it again from 0;
        None: fetched too often, the update failed."""
        self.close()
        path, _, sha, local = self._entry(self.index)
        if binascii.hexlify(self._hash.digest()).decode() == sha:
            return True
        remove(local)
        self.fetches += 1
        log("%s failed its hash (fetch %d of %d)" % (path, self.fetches, FETCHES))
        if self.fetches >= FETCHES:
            fail(self.updater, self.offer, "%s failed its hash %d times" % (path, FETCHES))
            return None
        return False

    def _read_manifest(self):
        """Check the verified manifest; its files become the download. False: failed."""
        manifest = read_json(self.dir + "/manifest.json")
        try:
            files = [[f["path"], int(f["size"]), f["sha256"]] for f in manifest["files"]]
            version = str(manifest["version"])
            mpy = manifest.get("mpy")
        except (KeyError, TypeError, ValueError) as exc:
            fail(self.updater, self.offer, "manifest not understood: %r" % (exc,))
            return False
        why = self._refusal(files, version, mpy)
        if why:
            fail(self.updater, self.offer, why)
            return False
        self.files = files
        self.total = sum(f[1] for f in files)
        return True

    def _refusal(self, files, version, mpy):
        if version != self.offer[1]:
            return "the manifest says version %s, the offer %s" % (version, self.offer[1])
        if mpy is not None and mpy != board_mpy():
            return "built for bytecode %s, this board runs %s" % (mpy, board_mpy() or "source")
        if not 1 <= len(files) <= 64:
            return "a bundle has 1 to 64 files"
        for path, size, sha in files:
            why = bad_path(path)
            if why:
                return why
            if not 0 <= size <= 65536 or not isinstance(sha, str) or len(sha) != 64:
                return "%s: bad size or hash" % path
        try:
            st = os.statvfs(self.dir)
            free = st[0] * st[4]  # f_bsize * f_bavail
        except (OSError, AttributeError):
            return None
        if free < sum(f[1] for f in files) + 8192:
            return "not enough flash: %d bytes free" % free
        return None

    def _progress(self):
        """`downloading` at 0 and at each 10% after."""
        percent = 0
        if self.total:
            percent = (self.done + self.offset) * 100 // self.total // 10 * 10
        if percent > self.progress:
            self.progress = percent
            if mem_alloc is not None:  # the live heap, collected, at each 10%
                port.collect_garbage()
                self.stats["heap"] = max(self.stats["heap"], mem_alloc())
            self.updater.report("downloading", self.offer[1], self.offer[2], percent)

    def _stage(self):
        stats = self.stats
        stats["ms"] = port.ticks_diff(port.ticks_ms(), self._started)
        log(
            "staged %s: %d files, %d bytes in %d ms, %d chunks (%d bytes), %d requests, "
            "live heap %d" % (self.offer[1], len(self.files), self.total, stats["ms"],
                              stats["chunks"], stats["bytes"], stats["requests"], stats["heap"])
        )  # fmt: skip
        if self.progress < 100:
            self.updater.report("downloading", self.offer[1], self.offer[2], 100)
        staged(self.updater, self.offer, [f[0] for f in self.files], stats)

    # ---- chunks -----------------------------------------------------------------------

    def take(self, payload):
        """A chunk: one line of JSON, then at most CHUNK bytes of the file."""
        end = payload.find(b"\n")
        if self._file is None or end < 0:
            return
        try:
            head = json.loads(payload[:end])
            if head["bundle"] != self.offer[0] or head["path"] != self.path:
                return  # not for what we asked (an old request's answer)
            if head["offset"] != self.offset:
                return  # a duplicate or a late answer
        except (ValueError, KeyError, TypeError):
            return
        if "error" in head:
            self.errors += 1
            log("the server answered %s at %d: %s" % (self.path, self.offset, head["error"]))
            if self.errors >= ERRORS:
                fail(self.updater, self.offer, "server: %s" % (head["error"],))
            return
        data = memoryview(payload)[end + 1 :]
        n = len(data)
        if head.get("size") != self.size or not 0 < n <= CHUNK or self.offset + n > self.size:
            log("chunk of %s at %d does not fit; asking again" % (self.path, self.offset))
            return  # asked again after RETRY_MS
        self._file.write(data)
        self._file.flush()
        self._hash.update(data)
        self.offset += n
        stats = self.stats
        stats["chunks"] += 1
        stats["bytes"] += len(payload)
        self.errors = 0
        self._advance()

    async def ask(self, session):
        if self._file is None:
            return
        now = port.ticks_ms()
        if not self._want and port.ticks_diff(now, self._asked) < RETRY_MS:
            return
        self._want = False
        self._asked = now
        self.stats["requests"] += 1
        request = '{"bundle":"%s","path":"%s","offset":%d}' % (
            self.offer[0],
            self.path,
            self.offset,
        )
        # QoS 0: a lost request or chunk is asked for again after RETRY_MS.
        await session._send_small(wire.publish, self.updater.get_topic, request.encode(), 0, 0)
