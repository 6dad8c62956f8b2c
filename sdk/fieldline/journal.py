"""The flash journal: append-only segment files, bounded in bytes, that survive reboots and
power loss mid-write.

A record is framed as <u16 length><u32 crc32><payload>. A torn or corrupt frame ends its
segment for readers (the rest of that segment is skipped and counted in `torn`), and after a
restart new records go to a fresh segment, never after garbage. Positions are integers,
segment * SPAN + offset, so they compare in journal order. The acknowledged position is kept
in the file `ack` (written via rename); after a crash at most the records acknowledged since
its last save are sent again (at-least-once). When the bound is exceeded the oldest segment
goes, and the unacknowledged records in it are added to `dropped`.
"""

import binascii
import os
import struct

SPAN = 1 << 16  # max segment size; positions stay small ints on 32-bit boards
FRAME = 6
_FRAME_FMT = "<HI"


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _makedirs(path):
    parts = path.split("/")
    current = ""
    for part in parts:
        current = current + "/" + part if current else (part or "/")
        if not part:
            continue
        try:
            os.mkdir(current)
        except OSError:
            pass


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


class Journal:
    def __init__(self, directory, max_bytes=262144, segment_bytes=0):
        if max_bytes < 2 * 64:
            raise ValueError("buffer.flash_bytes must be at least 128 bytes")
        self.dir = directory.rstrip("/") or "/"
        self.max_bytes = max_bytes
        if not segment_bytes:
            segment_bytes = max(64, min(SPAN, max_bytes // 8))
        self.segment_bytes = min(segment_bytes, SPAN)
        self.dropped = 0
        self.torn = 0
        self._segnos = []
        self._sizes = {}
        self._total = 0
        self._file = None  # type: ignore[var-annotated]
        self._saved_ack = -1
        _makedirs(self.dir)
        self._load()

    # ---- loading --------------------------------------------------------------------

    def _path(self, segno):
        return self.dir + "/" + str(segno) + ".seg"

    def _load(self):
        segnos = []
        for name in _listdir(self.dir):
            if name.endswith(".seg"):
                try:
                    segnos.append(int(name[:-4]))
                except ValueError:
                    pass
        segnos.sort()
        ack = 0
        try:
            with open(self.dir + "/ack") as f:
                ack = int(f.read().strip() or "0")
        except (OSError, ValueError):
            ack = 0
        for segno in list(segnos):
            if segno < ack // SPAN:
                self._remove(segno, segnos)
        for segno in segnos:
            size = _size(self._path(segno))
            self._sizes[segno] = size
            self._total += size
        self._segnos = segnos
        fresh = True
        if segnos:
            last = segnos[-1]
            valid = self._scan_valid_end(last)
            # Never append after a torn tail: readers would stop at it.
            fresh = valid != self._sizes[last] or self._sizes[last] >= self.segment_bytes
        self._cur = (segnos[-1] + 1) if (segnos and fresh) else (segnos[-1] if segnos else 0)
        self._fresh = fresh
        self.ack_pos = max(ack, self.start_pos())
        self._saved_ack = ack

    def _scan_valid_end(self, segno):
        off = 0
        try:
            with open(self._path(segno), "rb") as f:
                while True:
                    record = self._read_frame(f)
                    if record is None:
                        return off
                    off += FRAME + len(record)
        except OSError:
            return off

    @staticmethod
    def _read_frame(f):
        header = f.read(FRAME)
        if not header or len(header) < FRAME:
            return None
        length, crc = struct.unpack(_FRAME_FMT, header)
        payload = f.read(length)
        if len(payload) != length or binascii.crc32(payload) & 0xFFFFFFFF != crc:
            return None
        return payload

    # ---- positions ------------------------------------------------------------------

    def start_pos(self):
        return self._segnos[0] * SPAN if self._segnos else self._cur * SPAN

    @property
    def end_pos(self):
        if self._fresh or not self._segnos:
            return self._cur * SPAN
        return self._cur * SPAN + self._sizes[self._cur]

    def normalize(self, pos):
        """The same point in the journal, moved past segment ends and dropped segments."""
        if pos < self.start_pos():
            return self.start_pos()
        segno = pos // SPAN
        for s in self._segnos:
            if s < segno:
                continue
            if s == segno and pos % SPAN < self._sizes[s]:
                return pos
            if s > segno:
                return s * SPAN
        return self.end_pos  # past the last stored byte: the next record goes there

    @property
    def bytes_used(self):
        return self._total

    # ---- writing --------------------------------------------------------------------

    def append(self, payload):
        """Store one record durably; returns (start, end) positions."""
        n = len(payload)
        if n > 65535 or FRAME + n > self.segment_bytes:
            raise ValueError("record of %d bytes does not fit a journal segment" % n)
        if self._fresh or self._sizes.get(self._cur, 0) + FRAME + n > self.segment_bytes:
            self._rotate()
        elif self._file is None:
            self._file = open(self._path(self._cur), "ab")
        start = self._cur * SPAN + self._sizes[self._cur]
        frame = struct.pack(_FRAME_FMT, n, binascii.crc32(payload) & 0xFFFFFFFF) + payload
        f = self._file
        assert f is not None
        f.write(frame)
        f.flush()  # littlefs commits on flush; the host OS keeps it past SIGKILL
        self._sizes[self._cur] += FRAME + n
        self._total += FRAME + n
        self._enforce_bound()
        return start, start + FRAME + n

    def _rotate(self):
        if self._file is not None:
            self._file.close()
        if not self._fresh and self._segnos:
            self._cur += 1
        self._fresh = False
        self._file = open(self._path(self._cur), "wb")
        self._segnos.append(self._cur)
        self._sizes[self._cur] = 0

    def _enforce_bound(self):
        while self._total > self.max_bytes and len(self._segnos) > 1:
            oldest = self._segnos[0]
            self.dropped += self._count_from(oldest, self.ack_pos)
            self._remove(oldest, self._segnos)
            if self.ack_pos < self.start_pos():
                self.ack_pos = self.start_pos()
                self.save_ack()

    def _count_from(self, segno, pos):
        skip = pos - segno * SPAN if pos // SPAN == segno else (0 if pos < segno * SPAN else None)
        if skip is None:
            return 0  # everything in it was acknowledged
        count = 0
        off = 0
        try:
            with open(self._path(segno), "rb") as f:
                while True:
                    record = self._read_frame(f)
                    if record is None:
                        return count
                    if off >= skip:
                        count += 1
                    off += FRAME + len(record)
        except OSError:
            return count

    def _remove(self, segno, segnos):
        try:
            os.remove(self._path(segno))
        except OSError:
            pass
        if segno in segnos:
            segnos.remove(segno)
        self._total -= self._sizes.pop(segno, 0)

    # ---- reading and acknowledging ---------------------------------------------------

    def read(self, pos, max_count, max_bytes, extra=0):
        """Up to max_count records (together at most max_bytes, each counted `extra` bytes
        larger; at least one) from pos: (records, position after the last one)."""
        records = []  # type: list
        total = 0
        pos = self.normalize(pos)
        end = self.end_pos
        while len(records) < max_count and pos < end:
            segno = pos // SPAN
            with open(self._path(segno), "rb") as f:
                f.seek(pos % SPAN)
                size = self._sizes[segno]
                while len(records) < max_count and pos % SPAN < size:
                    record = self._read_frame(f)
                    if record is None:  # torn or corrupt: skip the rest of this segment
                        self.torn += 1
                        pos = segno * SPAN + size
                        break
                    if records and total + len(record) + extra > max_bytes:
                        return records, pos
                    records.append(record)
                    total += len(record) + extra
                    pos += FRAME + len(record)
            pos = self.normalize(pos)
        return records, pos

    def ack(self, pos):
        """Everything before pos was delivered; finished segments are deleted."""
        if pos <= self.ack_pos:
            return
        self.ack_pos = pos
        segno = pos // SPAN
        removed = False
        while self._segnos and self._segnos[0] < segno:
            self._remove(self._segnos[0], self._segnos)
            removed = True
        if removed:
            self.save_ack()

    def save_ack(self):
        if self.ack_pos == self._saved_ack:
            return
        tmp = self.dir + "/ack.tmp"
        with open(tmp, "w") as f:
            f.write(str(self.ack_pos))
        try:
            os.rename(tmp, self.dir + "/ack")
        except OSError:  # FAT will not rename onto an existing file; littlefs does
            try:
                os.remove(self.dir + "/ack")
            except OSError:
                pass
            os.rename(tmp, self.dir + "/ack")
        self._saved_ack = self.ack_pos

    def close(self):
        self.save_ack()
        if self._file is not None:
            self._file.close()
            self._file = None
