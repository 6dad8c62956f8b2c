"""A device's remote configuration on the wire (docs/fleet.md): what a PUT may change,
what GET answers, what the device reports. The public routes (gateway), the internal
API (devices) and storage (which passes the device's reports on) share these rules.

Every key of a change is optional and a key left out keeps its value: the server merges
and sends the device the whole config, so a device that missed versions still gets
everything. Bounds: the whole config is at most CONFIG_MAX_BYTES of JSON (the device
receives it into its own heap), `app` at most APP_MAX_BYTES. The server checks the
shape; whether a sensor exists on the board only the device knows: it rejects the
version and reports why.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictStr, field_validator

CONFIG_MAX_BYTES = 2048
APP_MAX_BYTES = 1024
SENSORS_MAX = 16
SENSOR_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
SENSOR_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
ERROR_MAX = 300
VERSION_MAX = 2**31 - 1

SensorSetting = StrictStr | int | float | bool


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _check_sensor(entry: dict) -> dict:
    kind = entry.get("kind")
    if not isinstance(kind, str) or not SENSOR_KIND.fullmatch(kind):
        raise ValueError(
            f'each sensor needs "kind": lower-case letters, digits, _ (e.g. "dht22"); got {kind!r}'
        )
    for key, value in entry.items():
        if not SENSOR_KEY.fullmatch(key):
            raise ValueError(f"sensor setting {key!r}: lower-case letters, digits and _")
        if isinstance(value, str) and len(value) > 64:
            raise ValueError(f"sensor setting {key!r} is longer than 64 characters")
    return entry


class ConfigChange(BaseModel):
    """PUT /api/v1/devices/{id}/config: the keys to change; the others keep their value."""

    model_config = ConfigDict(extra="forbid")

    interval_s: Annotated[float, Field(ge=1, le=86400)] | None = Field(
        None, description="seconds between readings (1-86400)"
    )
    sensors: (
        Annotated[list[dict[str, SensorSetting]], Field(min_length=1, max_length=SENSORS_MAX)]
        | None
    ) = Field(
        None,
        description='the sensors to read, as config.json has them: [{"kind": "dht22", "pin": 4}]',
    )
    app: dict[str, JsonValue] | None = Field(
        None, description=f"free settings for your own code, at most {APP_MAX_BYTES} bytes of JSON"
    )

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, value):
        return None if value is None else [_check_sensor(entry) for entry in value]

    @field_validator("app")
    @classmethod
    def _app(cls, value):
        if value is not None and len(compact(value)) > APP_MAX_BYTES:
            raise ValueError(f"app is {len(compact(value))} bytes of JSON; at most {APP_MAX_BYTES}")
        return value

    def changes(self) -> dict:
        changes = self.model_dump(exclude_unset=True)
        interval = changes.get("interval_s")
        if interval is not None and float(interval).is_integer():
            changes["interval_s"] = int(changes["interval_s"])
        return changes


def merged(current: dict, changes: dict) -> dict:
    """The new whole config; a key given as null is removed (the device's own default)."""
    config = dict(current)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    size = len(compact(config))
    if size > CONFIG_MAX_BYTES:
        raise ValueError(f"the config would be {size} bytes of JSON; at most {CONFIG_MAX_BYTES}")
    return config


class DesiredConfig(BaseModel):
    version: int
    config: dict[str, JsonValue]
    created_at: datetime


class ReportedConfig(BaseModel):
    version: int
    status: Literal["applied", "rejected"]
    error: str | None = None
    at: datetime


class DeviceConfigState(BaseModel):
    """GET .../config: what was asked, what the device last said, and whether they differ."""

    desired: DesiredConfig | None
    reported: ReportedConfig | None
    pending: bool = Field(
        description="a desired version the device has not reported on yet (offline, or busy)"
    )


class ConfigReport(BaseModel):
    """The device's payload on devices/<id>/config/reported."""

    model_config = ConfigDict(extra="ignore")

    version: Annotated[int, Field(ge=0, le=VERSION_MAX)]
    status: Literal["applied", "rejected"]
    error: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("error")
    @classmethod
    def _short(cls, value):
        return None if value is None else value[:ERROR_MAX]
