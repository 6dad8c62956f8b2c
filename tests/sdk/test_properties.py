"""Property tests (CPython, hypothesis at the loaded profile) for the wire format, the
journal and readings: arbitrary inputs round-trip."""

from __future__ import annotations

import json
import os
import string
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from fieldline import reading, wire
from fieldline.journal import FRAME, Journal


def _spec_publish(topic: bytes, payload: bytes, pid: int, retain: bool, dup: bool) -> bytes:
    """PUBLISH QoS 1 straight from the MQTT 3.1.1 spec, independently of wire.py."""
    body = len(topic).to_bytes(2, "big") + topic + pid.to_bytes(2, "big") + payload
    n = len(body)
    length = bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([0x32 | (0x08 if dup else 0) | (1 if retain else 0)]) + bytes(length) + body


topics = st.text(alphabet=string.ascii_letters + "/_-0123456789", min_size=1, max_size=80)


@given(
    topic=topics,
    payload=st.binary(max_size=20000),
    pid=st.integers(1, 65535),
    retain=st.booleans(),
    dup=st.booleans(),
)
def test_publish_bytes_match_the_spec_and_parse_back(topic, payload, pid, retain, dup):
    topic_bytes = topic.encode()
    size = wire.publish_size(topic_bytes, len(payload), 1)
    buf = bytearray(size + 3)
    n = wire.publish(buf, topic_bytes, payload, pid, 1, retain, dup)
    assert n == size
    assert bytes(buf[:n]) == _spec_publish(topic_bytes, payload, pid, retain, dup)
    length, shift, i, done = 0, 0, 1, False
    while not done:
        length, done = wire.decode_varint_step(length, shift, buf[i])
        shift += 7
        i += 1
    assert i + length == n
    parsed_topic, parsed_pid, parsed_payload, qos = wire.parse_publish(buf[0], buf[i:n])
    assert (parsed_topic, parsed_pid, bytes(parsed_payload), qos) == (
        topic_bytes,
        pid,
        payload,
        1,
    )


@given(
    records=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40),
    cut=st.integers(0, 305),
)
def test_journal_round_trips_and_survives_a_torn_last_record(records, cut):
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(directory + "/j", 1 << 20, 4096)
        for record in records:
            journal.append(record)
        journal.close()
        last_frame = FRAME + len(records[-1])
        cut = min(cut, last_frame - 1)
        segments = sorted(
            int(name[:-4]) for name in os.listdir(directory + "/j") if name.endswith(".seg")
        )
        path = f"{directory}/j/{segments[-1]}.seg"
        os.truncate(path, os.path.getsize(path) - cut)
        reopened = Journal(directory + "/j", 1 << 20, 4096)
        got, _ = reopened.read(reopened.ack_pos, 1000, 1 << 30)
        assert got == (records if cut == 0 else records[:-1])
        reopened.append(b"next")
        got, _ = reopened.read(reopened.ack_pos, 1000, 1 << 30)
        assert got[-1] == b"next" and len(got) == len(records) + (1 if cut == 0 else 0)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True)
values = st.one_of(
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(
    readings=st.dictionaries(names, values, min_size=1, max_size=64),
    seq=st.integers(1, 2**31),
    boot=st.integers(1, 2**31),
    ts=st.integers(1, 2**42),
)
def test_any_valid_reading_round_trips_to_the_wire_json(readings, seq, boot, ts):
    record = reading.encode(ts, 0, seq, boot, reading.validate(readings))
    assert json.loads(reading.to_json(record, None)) == {
        "ts": ts,
        "seq": seq,
        "boot": boot,
        "values": readings,
    }
