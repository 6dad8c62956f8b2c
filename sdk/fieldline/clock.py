"""Reading timestamps: ms since the epoch once the clock is synced, else uptime to be
re-stamped when NTP answers; `seq` counts readings since boot; `boot` counts starts and is
kept in a small file.

No two readings of a boot get the same time: the backend keys a reading by (device, ts), so
two readings in one millisecond would be one row. A reading in the same millisecond as the
one before (or after the clock stepped back) is stamped 1 ms after it, in uptime ticks
before the sync and in epoch ms after it; re-stamping maps distinct ticks to distinct times
below the sync's epoch, and synced stamps start above it."""

from fieldline import port


def next_boot(path):
    """Read, increment and store the boot counter (0 when the file is missing or bad)."""
    boot = 0
    try:
        with open(path) as f:
            boot = int(f.read().strip() or "0")
    except (OSError, ValueError):
        boot = 0
    boot += 1
    with open(path, "w") as f:
        f.write(str(boot))
    return boot


class Clock:
    def __init__(self, boot):
        self.boot = boot
        self.seq = 0
        self._sync_epoch_ms = 0
        self._sync_ticks = port.ticks_ms()
        self._last_ticks = None  # of the newest reading, this boot
        self._last_ts = 0
        self.synced = False
        self.check_sync()

    def check_sync(self):
        """Remember the epoch/ticks pair as soon as the port says the clock is right."""
        if not self.synced and port.time_is_synced():
            self._sync_ticks = port.ticks_ms()
            self._sync_epoch_ms = port.epoch_ms()
            self.synced = True
            # Synced stamps start after the newest re-stamped one (bumped ticks may run
            # ahead of the sync's own).
            self._last_ts = self._sync_epoch_ms
            if self._last_ticks is not None:
                self._last_ts = max(self._last_ts, self.restamp(self._last_ticks))
        return self.synced

    def stamp(self):
        """(ts ms or 0 when unsynced, uptime ticks, seq) for a new reading."""
        self.seq += 1
        ticks = port.ticks_ms()
        last = self._last_ticks
        if last is not None and port.ticks_diff(ticks, last) <= 0:
            ticks = port.ticks_add(last, 1)
        self._last_ticks = ticks
        if self.synced:
            ts = port.epoch_ms()
            if ts <= self._last_ts:
                ts = self._last_ts + 1
            self._last_ts = ts
            return ts, ticks, self.seq
        return 0, ticks, self.seq

    def restamp(self, ticks):
        """The epoch ms of a reading taken at `ticks` this boot (clock must be synced)."""
        return self._sync_epoch_ms - port.ticks_diff(self._sync_ticks, ticks)
