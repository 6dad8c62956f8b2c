"""The SDK's pure logic, written to run unchanged under CPython (pytest collects it through
test_logic.py) and under the MicroPython unix port (`micropython logic_cases.py <dir>`).

No pytest, no f-strings with "=", no CPython-only modules: each case_* takes a scratch
directory and raises AssertionError (or anything) on failure."""

import os

from fieldline import reading, wire
from fieldline.backoff import Backoff, seed_for
from fieldline.buffer import OfflineBuffer
from fieldline.clock import Clock
from fieldline.journal import SPAN, Journal


def _bytes(buf, n):
    return bytes(buf[:n])


def case_wire_connect_exact_bytes(workdir):
    buf = bytearray(128)
    n = wire.connect(buf, b"dev", 30, False, b"u", b"p", b"devices/dev/status", b"offline", 1, True)
    expected = (
        b"\x10\x32\x00\x04MQTT\x04\xec\x00\x1e\x00\x03dev"
        b"\x00\x12devices/dev/status\x00\x07offline\x00\x01u\x00\x01p"
    )
    assert _bytes(buf, n) == expected, _bytes(buf, n)
    assert n == wire.connect_size(b"dev", b"u", b"p", b"devices/dev/status", b"offline")
    # clean session, no will, no credentials
    n = wire.connect(buf, b"c", 60, True)
    assert _bytes(buf, n) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"


def case_wire_publish_exact_bytes(workdir):
    buf = bytearray(512)
    n = wire.publish(buf, b"a/b", b"hi", 0x0102, 1, False, False)
    assert _bytes(buf, n) == b"\x32\x09\x00\x03a/b\x01\x02hi"
    n = wire.publish(buf, b"a/b", b"hi", 7, 1, True, True)
    assert _bytes(buf, n) == b"\x3b\x09\x00\x03a/b\x00\x07hi"
    # 200-byte payload: two-byte remaining length (207 = 0xCF 0x01)
    n = wire.publish(buf, b"a/b", b"x" * 200, 1, 1)
    assert _bytes(buf, 5) == b"\x32\xcf\x01\x00\x03", _bytes(buf, 5)
    assert n == wire.publish_size(b"a/b", 200, 1) == 210
    try:
        wire.publish(bytearray(8), b"a/b", b"too long for this", 1)
    except ValueError:
        pass
    else:
        raise AssertionError("a too small buffer must be refused, not overrun")


def case_wire_small_packets_exact_bytes(workdir):
    buf = bytearray(64)
    assert _bytes(buf, wire.puback(buf, 0xBEEF)) == b"\x40\x02\xbe\xef"
    assert _bytes(buf, wire.subscribe(buf, 5, b"c/d", 1)) == b"\x82\x08\x00\x05\x00\x03c/d\x01"
    assert _bytes(buf, wire.pingreq(buf)) == b"\xc0\x00"
    assert _bytes(buf, wire.disconnect(buf)) == b"\xe0\x00"


def case_wire_parsers(workdir):
    assert wire.parse_connack(b"\x01\x00") == (True, 0)
    assert wire.parse_connack(b"\x00\x05") == (False, 5)
    topic, pid, payload, qos = wire.parse_publish(0x32, b"\x00\x03c/d\x00\x09{}")
    assert (topic, pid, bytes(payload), qos) == (b"c/d", 9, b"{}", 1)
    value, done = wire.decode_varint_step(0, 0, 0xCF)
    assert not done
    value, done = wire.decode_varint_step(value, 7, 0x01)
    assert done and value == 207
    try:
        wire.parse_connack(b"\x00")
    except wire.ProtocolError:
        pass
    else:
        raise AssertionError("short CONNACK accepted")


def case_backoff_schedule(workdir):
    backoff = Backoff(seed_for("dev-a"), 100, 1000)
    delays = [backoff.delay_ms() for _ in range(10)]
    # The same on every interpreter: a fleet's spread does not depend on the firmware build.
    assert delays == [92, 74, 260, 282, 505, 71, 399, 156, 432, 32], delays
    ceilings = [Backoff(1, 100, 1000).ceiling_ms(i) for i in range(6)]
    assert ceilings == [100, 200, 400, 800, 1000, 1000], ceilings
    for i, delay in enumerate(delays):
        assert 0 <= delay <= min(1000, 100 << i)
    other = Backoff(seed_for("dev-b"), 100, 1000)
    assert [other.delay_ms() for _ in range(10)] != delays, "two devices in lockstep"
    assert seed_for("dev-a", 1) != seed_for("dev-a", 2), "every boot the same schedule"
    assert backoff.refused_delay_ms() == 1000
    backoff.reset()
    assert backoff.attempt == 0 and backoff.delay_ms() <= 100


def _records(n, size=30):
    return [f"{i:05d}:".encode() + b"v" * size for i in range(n)]


def case_journal_round_trip_and_torn_tail(workdir):
    path = workdir + "/torn"
    journal = Journal(path, 4096)
    records = _records(5)
    for record in records:
        journal.append(record)
    journal.close()
    segments = [name for name in os.listdir(path) if name.endswith(".seg")]
    assert len(segments) == 1, segments
    with open(path + "/" + segments[0], "ab") as f:
        f.write(b"\x40\x00\x01\x02\x03\x04half a rec")  # power cut mid-write
    journal = Journal(path, 4096)
    got, pos = journal.read(journal.ack_pos, 100, 1 << 20)
    assert got == records, got
    journal.append(b"after the restart")
    got, pos = journal.read(journal.ack_pos, 100, 1 << 20)
    assert got == records + [b"after the restart"], got
    assert pos == journal.end_pos


def case_journal_bound_drops_oldest(workdir):
    journal = Journal(workdir + "/bound", 600, 150)
    records = _records(60)
    for record in records:
        journal.append(record)
    assert journal.bytes_used <= 600, journal.bytes_used
    kept, _ = journal.read(journal.ack_pos, 1000, 1 << 20)
    assert kept == records[len(records) - len(kept) :], "the newest must be kept, in order"
    assert journal.dropped + len(kept) == len(records), (journal.dropped, len(kept))
    assert journal.dropped > 0


def case_journal_ack_survives_restart(workdir):
    path = workdir + "/ack"
    journal = Journal(path, 8192, 256)
    records = _records(12)
    for record in records:
        journal.append(record)
    got, pos = journal.read(journal.ack_pos, 7, 1 << 20)
    assert got == records[:7]
    journal.ack(pos)
    journal.close()
    journal = Journal(path, 8192, 256)
    got, _ = journal.read(journal.ack_pos, 100, 1 << 20)
    assert got == records[7:], got
    assert journal.ack_pos // SPAN >= 1, "acknowledged segments should be deleted"


def case_buffer_serves_ram_then_flash_in_order(workdir):
    buffer = OfflineBuffer(Journal(workdir + "/buf", 65536, 512), ram_records=3)
    records = _records(10)
    for record in records:
        buffer.add(record)
    taken = []
    ends = []
    while buffer.has_unsent():
        batch, end = buffer.take(4, 1 << 20)
        assert batch, "has_unsent() but nothing taken"
        taken += batch
        ends.append(end)
    assert taken == records, taken
    buffer.commit(ends[0])
    buffer.rewind_to(None)  # the link died with nothing in flight
    one, _ = buffer.take(100, 1)  # the byte limit still hands out at least one record
    assert one == [records[4]], one
    again, _ = buffer.take(100, 1 << 20)
    assert again == records[5:], again
    assert not buffer.has_unsent()


def case_reading_validation(workdir):
    import json

    text = reading.validate({"temperature": 21.5, "door": True, "n": 3})
    assert json.loads(text) == {"temperature": 21.5, "door": True, "n": 3}, text
    bad = [
        {},
        {"1abc": 1},
        {"has space": 1},
        {"x" * 65: 1},
        {"t": "warm"},
        {"t": float("nan")},
        {"t": None},
        dict((f"v{i}", i) for i in range(65)),
    ]
    for values in bad:
        try:
            reading.validate(values)
        except ValueError as exc:
            assert str(exc), "an error must say what is wrong"
        else:
            raise AssertionError(f"accepted invalid values {values!r}")
    reading.validate(dict((f"v{i}", i) for i in range(64)))
    reading.validate({"_" + "a" * 63: 1})


def case_reading_restamped_after_sync(workdir):
    clock = Clock(7)
    values = reading.validate({"t": 1})
    record = reading.encode(0, 1000, 3, 7, values)
    assert reading.to_json(record, None) == '{"seq":3,"boot":7,"values":{"t": 1}}'
    clock._sync_ticks = 5000
    clock._sync_epoch_ms = 1700000005000
    clock.synced = True
    text = reading.to_json(record, clock)
    assert text == '{"ts":1700000001000,"seq":3,"boot":7,"values":{"t": 1}}', text
    old_boot = reading.encode(0, 1000, 3, 6, values)
    assert '"ts"' not in reading.to_json(old_boot, clock), "a past boot's uptime means nothing"
    batch = reading.batch_payload([record, reading.encode(1, 0, 4, 7, values)], clock)
    assert batch.startswith(b"[{") and batch.endswith(b"}]")


def case_clock_never_stamps_two_readings_alike(workdir):
    """Readings taken in the same millisecond (issue 14, item 4): distinct uptime ticks
    before the sync, distinct epoch ms after it, and the re-stamped ones all before."""
    clock = Clock(3)
    clock.synced = False  # as before NTP answered
    early = [clock.stamp() for _ in range(300)]
    ticks = [t for _, t, _ in early]
    assert len(set(ticks)) == 300, "two readings share their uptime"
    assert all(ts == 0 for ts, _, _ in early)
    assert clock.check_sync(), "the host's clock is right"
    restamped = [clock.restamp(t) for t in ticks]
    late = [clock.stamp()[0] for _ in range(300)]
    assert len(set(restamped + late)) == 600, "two readings of one boot share a time"
    assert max(restamped) < min(late)
    assert late == sorted(late) and restamped == sorted(restamped)


def case_device_publish_validates_and_counts_boots(workdir):
    from fieldline import Device

    data = workdir + "/data"
    device = Device(device_id="dev-logic", buffer={"dir": data})
    assert device.clock.boot == 1
    try:
        device.publish({"bad name": 1})
    except ValueError as exc:
        assert "bad name" in str(exc), str(exc)
    else:
        raise AssertionError("publish() accepted an invalid value name")
    assert device.publish({"t": 1.5}) == 1
    assert device.publish({"t": 2.5}) == 2
    records, _ = device.buffer.take(10, 1 << 20)
    assert [reading.decode(r)[2] for r in records] == [1, 2]
    device.journal.close()
    again = Device(device_id="dev-logic", buffer={"dir": data})
    assert again.clock.boot == 2, "the boot counter must survive a restart"
    assert again.publish({"t": 3}) == 1, "seq counts readings since boot"
    left, _ = again.buffer.take(10, 1 << 20)
    assert len(left) == 3, "unsent readings of the last boot are still there"
    again.journal.close()


CASES = [
    case_wire_connect_exact_bytes,
    case_wire_publish_exact_bytes,
    case_wire_small_packets_exact_bytes,
    case_wire_parsers,
    case_backoff_schedule,
    case_journal_round_trip_and_torn_tail,
    case_journal_bound_drops_oldest,
    case_journal_ack_survives_restart,
    case_buffer_serves_ram_then_flash_in_order,
    case_reading_validation,
    case_reading_restamped_after_sync,
    case_clock_never_stamps_two_readings_alike,
    case_device_publish_validates_and_counts_boots,
]


def main(workdir):
    failed = 0
    for case in CASES:
        os.mkdir(workdir + "/" + case.__name__)
        try:
            case(workdir + "/" + case.__name__)
            print("PASS", case.__name__)
        except Exception as exc:  # noqa: BLE001 - report every case
            failed += 1
            print("FAIL", case.__name__, repr(exc))
    print("FAILED" if failed else "ALL PASSED", failed)


if __name__ == "__main__":
    import sys

    main(sys.argv[1])
