"""Reading timestamps: ms since the epoch once the clock is synced, else uptime to be
re-stamped when NTP answers; `seq` counts readings since boot; `boot` counts starts and is
kept in a small file."""

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
        self.synced = False
        self.check_sync()

    def check_sync(self):
        """Remember the epoch/ticks pair as soon as the port says the clock is right."""
        if not self.synced and port.time_is_synced():
            self._sync_ticks = port.ticks_ms()
            self._sync_epoch_ms = port.epoch_ms()
            self.synced = True
        return self.synced

    def stamp(self):
        """(ts ms or 0 when unsynced, uptime ticks, seq) for a new reading."""
        self.seq += 1
        ticks = port.ticks_ms()
        if self.synced:
            return port.epoch_ms(), ticks, self.seq
        return 0, ticks, self.seq

    def restamp(self, ticks):
        """The epoch ms of a reading taken at `ticks` this boot (clock must be synced)."""
        return self._sync_epoch_ms - port.ticks_diff(self._sync_ticks, ticks)
