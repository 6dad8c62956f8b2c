"""Rules checked alone, without services: the payload contract, arrival stamps,
completeness arithmetic and the query API's time parsing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.gateway.routes.telemetry import parse_duration_ms, parse_time_ms
from fieldline_backend.infra.timeseries import ReadingMark
from fieldline_backend.ingestor.stamps import ArrivalClock, is_unknown, message_headers
from fieldline_backend.storage.readings import InvalidPayload, parse_payload
from fieldline_backend.storage.status import completeness


def test_a_reading_and_a_batch_parse():
    [one] = parse_payload(b'{"ts": 5, "seq": 1, "boot": 2, "values": {"t": 21, "door": true}}')
    assert (one.ts_ms, one.seq, one.boot, one.values) == (5, 1, 2, {"t": 21.0, "door": True})
    assert type(one.values["t"]) is float
    batch = parse_payload(
        json.dumps([{"values": {"a": 1}}, {"values": {"b": 2.5}, "dropped": 3}]).encode()
    )
    assert [r.values for r in batch] == [{"a": 1.0}, {"b": 2.5}] and batch[1].dropped == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b'{"values": {"t": NaN}}', "finite"),
        (b'{"values": {"t": 1e999}}', "finite"),
        (b'{"values": {"t": 1' + b"0" * 400 + b"}}", "too large"),
        (b"[" * 50_000 + b"]" * 50_000, "bytes is over"),
        (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
        (b'{"values": {"bad name": 1}}', "must match"),
        (b'{"values": {"t": "1"}}', "number or a boolean"),
        (b'{"ts": -1, "values": {"t": 1}}', "'ts'"),
        (b'{"seq": true, "values": {"t": 1}}', "'seq'"),
        (b"[]", "empty batch"),
        (b'{"values": {}}', "non-empty"),
        (b"42", "object or an array"),
        (json.dumps({"values": {f"v{i}": 1 for i in range(65)}}).encode(), "at most 64"),
    ],
)
def test_invalid_payloads_say_why(payload, reason):
    with pytest.raises(InvalidPayload, match=reason):
        parse_payload(payload)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.one_of(st.binary(max_size=300), JSONISH.map(lambda d: json.dumps({"values": d}).encode()))
)
def test_any_bytes_either_parse_into_valid_readings_or_raise_invalid_payload(data):
    """Never another exception (which would crash the worker); what passes is clean."""
    try:
        readings = parse_payload(data)
    except InvalidPayload:
        return
    assert readings
    for item in readings:
        assert 1 <= len(item.values) <= 64
        assert all(isinstance(v, bool) or math.isfinite(v) for v in item.values.values())


def test_arrival_stamps_strictly_increase_per_device():
    clock = ArrivalClock()
    stamps = [clock.stamp("a") for _ in range(500)]
    assert stamps == sorted(set(stamps))
    headers = message_headers("devices/dev-1/telemetry", clock)
    assert headers["client_id"] == "dev-1" and headers["topic"] == "devices/dev-1/telemetry"
    # Any other topic of a device is forwarded too, for storage to dead-letter it as
    # "unknown topic" (issue 13); commands (cloud -> device) and non-device topics are not.
    assert message_headers("devices/a/b/telemetry", clock)["client_id"] == "a"
    assert is_unknown("devices/a/b/telemetry") and not is_unknown("devices/a/status/buffer")
    assert message_headers("devices/dev-1/commands", clock) is None
    assert message_headers("other/dev-1/telemetry", clock) is None


def test_completeness_counts_gaps_per_boot_and_reported_drops():
    marks = [ReadingMark(i, 1, s, None) for i, s in enumerate([0, 1, 4])]  # 2, 3 missing
    marks += [ReadingMark(10 + i, 2, s, 7 if s == 2 else None) for i, s in enumerate([0, 2])]
    marks += [ReadingMark(20, None, None, None)]  # no seq: counted, no gaps
    result = completeness(marks)
    assert (result["received"], result["missing"], result["device_dropped"]) == (6, 3, 7)
    assert result["ratio"] == round(6 / 9, 4)
    assert completeness([])["ratio"] is None


def test_reported_drops_are_counted_per_boot_since_the_window_began():
    from fieldline_backend.infra.timeseries import DropReport
    from fieldline_backend.storage.status import reported_drops

    reports = [
        DropReport(5, 1, 2),
        DropReport(15, 1, 6),
        DropReport(20, 2, 3),
        DropReport(25, 2, 4),
    ]
    assert reported_drops(reports, 10) == (6 - 2) + 4
    assert reported_drops(reports, 0) == 6 + 4
    assert reported_drops(reports, 30) == 0


def test_query_times_and_durations():
    now = 1_764_000_000_000
    assert parse_time_ms("-1h", now, "start") == now - 3_600_000
    assert parse_time_ms("now", now, "stop") == now
    assert parse_time_ms("1700000000000", now, "start") == 1_700_000_000_000
    assert parse_time_ms("2025-11-24T16:00:00Z", now, "start") == 1_764_000_000_000
    assert parse_duration_ms("90s", "every") == 90_000 and parse_duration_ms("250", "every") == 250
    for bad in ("yesterday", "2025-11-24T16:00:00", "-1y"):
        with pytest.raises(Exception) as raised:
            parse_time_ms(bad, now, "start")
        assert raised.value.status_code == 400
