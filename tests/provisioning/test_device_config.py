"""config.json from the command line: valid, or a clear error naming the fix."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_provision.device_config import (
    MAX_PIN,
    SENSOR_KINDS,
    VALUE_NAME,
    build_config,
    config_problems,
    encode,
    parse_sensor_spec,
)
from fieldline_provision.errors import UsageError

MQTT = {
    "host": "127.0.0.1",
    "port": 1883,
    "tls": False,
    "client_id": "dev-abc",
    "username": "dev-abc",
    "password": "s3cret-password-123",
}


def test_the_brief_example():
    sensors = [parse_sensor_spec("simulated"), parse_sensor_spec("dht22:4")]
    config = build_config("dev-abc", MQTT, sensors, "home", "wifi-pass", 10)
    assert config["sensors"] == [
        {"kind": "simulated", "name": "temperature"},
        {"kind": "dht22", "pin": 4},
    ]
    assert parse_sensor_spec("dht22:4:greenhouse").value_names() == [
        "greenhouse_temperature",
        "greenhouse_humidity",
    ]
    assert config["mqtt"]["client_id"] == "dev-abc" and config["mqtt"]["keepalive"] == 30
    assert config["wifi"] == {"ssid": "home", "password": "wifi-pass"}
    assert config["interval_s"] == 10
    assert config_problems(json.loads(encode(config))) == []


def test_a_named_sensor_carries_its_name():
    specs = ["simulated:outside", "adc:34:soil", "bme280:21:22:attic", "esp32_temperature"]
    config = build_config("d", MQTT, [parse_sensor_spec(spec) for spec in specs])
    assert config["sensors"] == [
        {"kind": "simulated", "name": "outside"},
        {"kind": "adc", "pin": 34, "name": "soil"},
        {"kind": "bme280", "sda": 21, "scl": 22, "prefix": "attic_"},
        {"kind": "esp32_temperature", "name": "chip_temperature"},
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("thermistor:4", "unknown sensor kind"),
        ("dht22", "needs a GPIO number for pin"),
        ("dht22:x", "needs a GPIO number for pin"),
        ("bme280:21", "needs a GPIO number for scl, e.g. bme280:4:5"),
        ("dht22:99", "GPIO 99 does not exist"),
        ("simulated:9lives", "the name must be"),
        ("simulated:a:b", "the name must be"),
    ],
)
def test_bad_sensor_specs_say_what_to_write(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_sensor_spec(spec)


def test_wifi_and_interval_limits():
    sensors = [parse_sensor_spec("simulated")]
    with pytest.raises(UsageError, match="8 to 63"):
        build_config("d", MQTT, sensors, "home", "short")
    with pytest.raises(UsageError, match="longer than 32 bytes"):
        build_config("d", MQTT, sensors, "x" * 33)
    with pytest.raises(UsageError, match="between 1 and 86400"):
        build_config("d", MQTT, sensors, interval_s=0)
    with pytest.raises(UsageError, match="at least one --sensor"):
        build_config("d", MQTT, [])


def test_missing_credentials_are_a_config_problem():
    problems = config_problems({"device_id": "d", "mqtt": {"host": "h"}, "sensors": []})
    assert "config.json lacks mqtt.password" in problems
    assert "config.json lacks wifi" in problems
    assert "config.json has no sensors" in problems


name_text = st.text(string.ascii_letters + string.digits + "_", min_size=0, max_size=70)
spec_text = st.one_of(
    st.builds(
        lambda kind, pins, name: ":".join([kind, *pins] + ([name] if name is not None else [])),
        st.sampled_from([*SENSOR_KINDS, "DHT22", "bogus", ""]),
        st.lists(st.one_of(st.integers(-5, 80).map(str), st.just("x")), max_size=3),
        st.one_of(st.none(), name_text),
    ),
    st.text(max_size=20),
)


@given(
    specs=st.lists(spec_text, min_size=0, max_size=4),
    ssid=st.text(max_size=40),
    password=st.text(max_size=70),
    interval=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_command_line_gives_a_valid_config_or_a_usage_error(specs, ssid, password, interval):
    try:
        sensors = [parse_sensor_spec(spec) for spec in specs]
        config = build_config("dev-x", MQTT, sensors, ssid, password, interval)
    except UsageError as error:
        assert str(error) and "\n" not in str(error)
        return
    decoded = json.loads(encode(config))
    assert config_problems(decoded) == []
    assert 1 <= decoded["interval_s"] <= 86400
    assert len(decoded["wifi"]["ssid"].encode()) <= 32
    for entry in decoded["sensors"]:
        pin_names, label_key, _ = SENSOR_KINDS[entry["kind"]]
        assert set(entry) - {"kind", "name", "prefix"} == set(pin_names)
        assert all(0 <= entry[pin] <= MAX_PIN for pin in pin_names)
        if label_key == "name":
            assert VALUE_NAME.match(entry["name"]) and "prefix" not in entry
        elif "prefix" in entry:
            assert VALUE_NAME.match(entry["prefix"] + "temperature")
