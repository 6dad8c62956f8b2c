"""The board's config.json: built from the command line and the API's credentials.

Format (design brief): device_id, wifi {ssid, password}, mqtt {host, port, tls, ca,
client_id, username, password, keepalive}, interval_s, sensors [...], buffer {...}.
Everything is validated here so that a bad --sensor or --interval is a clear CLI error,
not a board that boots and crashes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from fieldline_provision.errors import UsageError

VALUE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

# What device/sensors.py drives: kind -> (pin names in the spec, what the NAME part sets,
# the value names it reports by default).
SENSOR_KINDS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "simulated": ((), "name", ("temperature",)),
    "esp32_temperature": ((), "name", ("chip_temperature",)),
    "adc": (("pin",), "name", ("analog",)),
    "dht22": (("pin",), "prefix", ("temperature", "humidity")),
    "bme280": (("sda", "scl"), "prefix", ("temperature", "humidity", "pressure")),
}
# GPIO numbers an ESP32-family chip can have (ESP32-S3 goes up to 48).
MAX_PIN = 48
DEFAULT_INTERVAL_S = 10
DEFAULT_KEEPALIVE_S = 30
DEFAULT_BUFFER = {"ram": 8, "flash_bytes": 262144}
SENSOR_SPEC_HELP = (
    "simulated[:NAME], esp32_temperature[:NAME], adc:PIN[:NAME], dht22:PIN[:PREFIX], "
    "bme280:SDA:SCL[:PREFIX] (e.g. simulated, dht22:4, adc:34:soil, bme280:21:22)"
)


@dataclass(frozen=True)
class SensorSpec:
    kind: str
    pins: tuple[int, ...] = ()
    label: str | None = None  # the NAME (or PREFIX) part

    def as_config(self) -> dict:
        pin_names, label_key, defaults = SENSOR_KINDS[self.kind]
        entry: dict = {"kind": self.kind}
        entry.update(zip(pin_names, self.pins, strict=True))
        if label_key == "name":
            entry["name"] = self.label or defaults[0]
        elif self.label:
            entry["prefix"] = self.label + "_"
        return entry

    def value_names(self) -> list[str]:
        _, label_key, defaults = SENSOR_KINDS[self.kind]
        if label_key == "name":
            return [self.label or defaults[0]]
        prefix = self.label + "_" if self.label else ""
        return [prefix + value for value in defaults]


def parse_sensor_spec(text: str) -> SensorSpec:
    """'dht22:4' -> SensorSpec('dht22', (4,)); raises UsageError naming the fix."""
    parts = text.strip().split(":")
    kind = parts[0].lower()
    if kind not in SENSOR_KINDS:
        raise UsageError(
            f"unknown sensor kind {parts[0]!r} in --sensor {text!r}: use {SENSOR_SPEC_HELP}"
        )
    pin_names, label_key, _ = SENSOR_KINDS[kind]
    rest = parts[1:]
    pins = []
    for pin_name in pin_names:
        if not rest or not rest[0].isdigit():
            example = kind + "".join(":" + str(4 + i) for i in range(len(pin_names)))
            raise UsageError(
                f"--sensor {text!r}: {kind} needs a GPIO number for {pin_name}, e.g. {example}"
            )
        pin = int(rest.pop(0))
        if pin > MAX_PIN:
            raise UsageError(f"--sensor {text!r}: GPIO {pin} does not exist (0-{MAX_PIN})")
        pins.append(pin)
    label = None
    if rest:
        # A prefix becomes part of value names, so both follow the value-name rule.
        if len(rest) > 1 or not VALUE_NAME.match(rest[0]) or len(rest[0]) > 50:
            raise UsageError(
                f"--sensor {text!r}: the {label_key} must be letters, digits and _ "
                "(not starting with a digit, at most 50), e.g. simulated:outside"
            )
        label = rest[0]
    return SensorSpec(kind, tuple(pins), label)


def check_sensor_count(sensors: list[SensorSpec]) -> None:
    values = sum(len(s.value_names()) for s in sensors)
    if values > 64:
        raise UsageError(f"{values} values per reading; at most 64: use fewer sensors")


def check_wifi(ssid: str, password: str) -> None:
    if len(ssid.encode()) > 32:
        raise UsageError(f"--wifi-ssid {ssid!r} is longer than 32 bytes: Wi-Fi names are not")
    if password and not 8 <= len(password) <= 63:
        raise UsageError(
            "the Wi-Fi password must be 8 to 63 characters (WPA2), or empty for an open network"
        )


def check_interval(interval: float) -> None:
    if not 1 <= interval <= 86400:
        raise UsageError(f"--interval {interval}: give seconds between 1 and 86400")


def build_config(
    device_id: str,
    mqtt: dict,
    sensors: list[SensorSpec],
    wifi_ssid: str = "",
    wifi_password: str = "",
    interval_s: float = DEFAULT_INTERVAL_S,
    ca_pem: str | None = None,
) -> dict:
    """The config.json content for one device (it holds secrets: never print it)."""
    check_wifi(wifi_ssid, wifi_password)
    check_interval(interval_s)
    if not sensors:
        raise UsageError("give at least one --sensor (e.g. --sensor simulated)")
    check_sensor_count(sensors)
    missing = [k for k in ("host", "port", "client_id", "username", "password") if not mqtt.get(k)]
    if missing:
        raise UsageError(f"the API's MQTT credentials lack {', '.join(missing)}: update the server")
    mqtt_config = {
        "host": mqtt["host"],
        "port": int(mqtt["port"]),
        "tls": bool(mqtt.get("tls", False)),
        "client_id": mqtt["client_id"],
        "username": mqtt["username"],
        "password": mqtt["password"],
        "keepalive": int(mqtt.get("keepalive") or DEFAULT_KEEPALIVE_S),
    }
    ca = ca_pem or mqtt.get("ca")
    if ca:
        mqtt_config["ca"] = ca
    interval = int(interval_s) if float(interval_s).is_integer() else interval_s
    return {
        "device_id": device_id,
        "wifi": {"ssid": wifi_ssid, "password": wifi_password},
        "mqtt": mqtt_config,
        "interval_s": interval,
        "sensors": [s.as_config() for s in sensors],
        "buffer": dict(DEFAULT_BUFFER),
    }


REQUIRED_KEYS = {
    "device_id": str,
    "wifi": dict,
    "mqtt": dict,
    "interval_s": (int, float),
    "sensors": list,
}
REQUIRED_MQTT_KEYS = ("host", "port", "client_id", "username", "password")


def config_problems(config: object) -> list[str]:
    """What makes a config.json incomplete (for `provision verify`); empty when fine."""
    if not isinstance(config, dict):
        return ["config.json is not a JSON object"]
    problems = []
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(config.get(key), kind):
            problems.append(f"config.json lacks {key}")
    mqtt = config.get("mqtt") if isinstance(config.get("mqtt"), dict) else {}
    problems += [f"config.json lacks mqtt.{k}" for k in REQUIRED_MQTT_KEYS if not mqtt.get(k)]
    if isinstance(config.get("sensors"), list) and not config["sensors"]:
        problems.append("config.json has no sensors")
    return problems


def encode(config: dict) -> bytes:
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
