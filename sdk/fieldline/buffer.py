"""The offline buffer: every reading goes to the flash journal at once (so a reboot or a
power cut loses nothing), and the newest unsent ones are also kept in a RAM queue so the
sender does not read flash while it keeps up. When the RAM queue is full its oldest entry is
forgotten (it is still in flash); only the journal's byte bound drops readings for good.
"""


class OfflineBuffer:
    def __init__(self, journal, ram_records=8):
        self.journal = journal
        self.ram_records = max(1, ram_records)
        self._ram = []  # (start, end, record) of the newest unsent records, oldest first
        self._read = journal.ack_pos  # the next record to hand to the sender

    def add(self, record):
        start, end = self.journal.append(record)
        ram = self._ram
        ram.append((start, end, record))
        if len(ram) > self.ram_records:
            ram.pop(0)

    def has_unsent(self):
        self._read = self.journal.normalize(self._read)
        return self._read < self.journal.end_pos

    @property
    def dropped(self):
        return self.journal.dropped

    def take(self, max_count, max_bytes, extra=0):
        """The next records in order (from RAM when they are there, else from flash) and
        the journal position to acknowledge once they are delivered; each record counts
        `extra` bytes more against max_bytes (what its wire form adds)."""
        pos = self.journal.normalize(self._read)
        ram = self._ram
        while ram and ram[0][0] < pos:
            ram.pop(0)
        records = []  # type: list
        if ram and ram[0][0] == pos:
            total = 0
            while ram and len(records) < max_count:
                start, end, record = ram[0]
                if start != pos or (records and total + len(record) + extra > max_bytes):
                    break
                records.append(record)
                total += len(record) + extra
                pos = self.journal.normalize(end)
                ram.pop(0)
        else:
            records, pos = self.journal.read(pos, max_count, max_bytes, extra)
        self._read = pos
        return records, pos

    def commit(self, pos):
        self.journal.ack(pos)

    def rewind_to(self, pos=None):
        """After a link died: hand out again everything after pos (the end of what is
        still in flight), or everything unacknowledged when nothing is."""
        self._read = self.journal.ack_pos if pos is None else max(pos, self.journal.ack_pos)
