"""The documented InfluxDB 2 and Kapacitor payloads parse into notifications;
malformed ones are refused with what is wrong."""

from __future__ import annotations

import pytest

from fieldline_backend.alerts.payloads import PayloadInvalid, parse_influxdb, parse_kapacitor
from tests.alerts.doc_payloads import INFLUXDB2_CRIT, KAPACITOR_CRITICAL, KAPACITOR_OK


def test_influxdb2_status_row():
    n = parse_influxdb(INFLUXDB2_CRIT, rule_id="rul-1")
    assert (n.rule_id, n.level, n.field, n.value) == ("rul-1", "crit", "usage_idle", 69.9)
    assert n.tags == {"cpu": "cpu0", "host": "Regans-MacBook-Pro-2.local"}
    assert n.device_key == "cpu=cpu0,host=Regans-MacBook-Pro-2.local"
    assert n.time_ms == 1457996921000
    assert parse_influxdb(INFLUXDB2_CRIT).rule_id == "0000000000000003"


def test_kapacitor_alert():
    n = parse_kapacitor(KAPACITOR_CRITICAL, "rul-1")
    assert (n.level, n.field, n.device_name) == ("crit", None, "Regans-MacBook-Pro-2.local")
    assert n.message == "cpu:nil is CRITICAL" and n.time_ms == 1457996920000
    assert n.details["kapacitor_rows"][0]["usage_idle"] == 69.9
    ok = parse_kapacitor(KAPACITOR_OK, "rul-1")
    assert ok.level == "ok" and ok.device_key != n.device_key  # cpu1 is another series


def test_nanosecond_fractions_and_zones():
    n = parse_influxdb({**INFLUXDB2_CRIT, "_time": "2024-01-15T12:00:00.123456789Z"}, "r")
    assert n.time_ms == 1705320000123


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({**INFLUXDB2_CRIT, "_level": "panic"}, "_level"),
        ({k: v for k, v in INFLUXDB2_CRIT.items() if k != "_level"}, "_level"),
        ({**INFLUXDB2_CRIT, "_time": "yesterday"}, "_time"),
        (
            {k: v for k, v in INFLUXDB2_CRIT.items() if k not in ("_time", "_status_timestamp")},
            "_time",
        ),
        ([1, 2], "object"),
    ],
)
def test_malformed_influxdb(payload, complaint):
    with pytest.raises(PayloadInvalid, match=complaint):
        parse_influxdb(payload, "r")


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({**KAPACITOR_CRITICAL, "level": "critical"}, "level"),
        ({**KAPACITOR_CRITICAL, "id": 7}, "id"),
        ({**KAPACITOR_CRITICAL, "data": {"series": "x"}}, "series"),
        ({**KAPACITOR_CRITICAL, "time": None}, "time"),
    ],
)
def test_malformed_kapacitor(payload, complaint):
    with pytest.raises(PayloadInvalid, match=complaint):
        parse_kapacitor(payload, "r")
