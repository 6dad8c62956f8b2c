"""A reading: validated values, stamped, stored as a compact record, sent as the JSON the
backend expects: {"ts": ms, "seq": n, "boot": n, "values": {...}} (no "ts" when the time
was never known)."""

import json
import struct

MAX_VALUES = 64
MAX_NAME = 64
_HEAD = "<QIII"  # ts ms (0 = not synced), uptime ticks, seq, boot
HEAD_BYTES = struct.calcsize(_HEAD)
# What a record's wire JSON adds to its stored bytes at most: {"ts":<13>,"seq":<10>,
# "boot":<10>,"values":...} and a comma, less the binary head. A batch is bounded by this
# (its payload, not its records, must fit the transmit buffer).
JSON_EXTRA = 66 - HEAD_BYTES
_INF = float("inf")


def _name_ok(name):
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        return False
    for i, ch in enumerate(name):
        if ch == "_" or "a" <= ch <= "z" or "A" <= ch <= "Z":
            continue
        if i and "0" <= ch <= "9":
            continue
        return False
    return True


def validate(values):
    """The values as JSON bytes, or ValueError saying which value is wrong and why."""
    if not isinstance(values, dict):
        raise ValueError("publish() takes a dict of name -> number or bool, got %s" % type(values))
    if not values:
        raise ValueError("publish() needs at least one value")
    if len(values) > MAX_VALUES:
        raise ValueError("a reading has at most %d values, got %d" % (MAX_VALUES, len(values)))
    for name, value in values.items():
        if not _name_ok(name):
            raise ValueError(
                "value name %r is invalid: use 1-64 letters, digits or _, not starting "
                "with a digit" % (name,)
            )
        if isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)):
            raise ValueError("value %r must be a number or a bool, got %r" % (name, value))
        if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
            raise ValueError("value %r is %r; only finite numbers can be sent" % (name, value))
    return json.dumps(values).encode()


def encode(ts, ticks, seq, boot, values_json):
    return struct.pack(_HEAD, ts, ticks & 0xFFFFFFFF, seq, boot) + values_json


def decode(record):
    """(ts, ticks, seq, boot, values JSON bytes)."""
    ts, ticks, seq, boot = struct.unpack(_HEAD, record[:HEAD_BYTES])
    return ts, ticks, seq, boot, record[HEAD_BYTES:]


def needs_time(record, boot):
    """True for a reading of this boot taken before the clock was synced."""
    ts, _, _, record_boot = struct.unpack(_HEAD, record[:HEAD_BYTES])
    return ts == 0 and record_boot == boot


def to_json(record, clock):
    """The wire JSON of one record, re-stamped if it was taken before the clock synced."""
    ts, ticks, seq, boot, values = decode(record)
    if not ts and clock is not None and clock.synced and boot == clock.boot:
        ts = clock.restamp(ticks)
    values = values.decode()
    if ts:
        return '{"ts":%d,"seq":%d,"boot":%d,"values":%s}' % (ts, seq, boot, values)
    return '{"seq":%d,"boot":%d,"values":%s}' % (seq, boot, values)


def batch_payload(records, clock):
    """One object for one record, a JSON array for a batch."""
    if len(records) == 1:
        return to_json(records[0], clock).encode()
    # One allocation of the full payload (join), not four: on a 100 KiB heap a
    # fragmented kilobyte is the difference between draining and MemoryError.
    parts = [to_json(r, clock).encode() for r in records]
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"
    return b",".join(parts)
