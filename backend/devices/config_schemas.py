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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

CONFIG_MAX_BYTES = 2048
APP_MAX_BYTES = 1024
SENSORS_MAX = 16
SENSOR_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
SENSOR_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
ERROR_MAX = 300
VERSION_MAX = 2**31 - 1

SensorSetting = Annotated[StrictStr, Field(max_length=64)] | StrictInt | StrictFloat | StrictBool


def _whole_number(value):
    """A JSON number with no fraction (2 or 2.0, as JSON Schema's integer); never text or
    a boolean (pydantic's lax mode would take "2" and true)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    return int(value)


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


class SensorEntry(BaseModel):
    """One sensor as config.json has it: `kind` and its settings (lower-case names,
    strings at most 64 characters), all in the schema so a client can check first."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"propertyNames": {"pattern": "^" + SENSOR_KEY.pattern + "$"}},
    )
    __pydantic_extra__: dict[str, SensorSetting] = Field(init=False)

    kind: Annotated[str, Field(pattern="^" + SENSOR_KIND.pattern + "$")] = Field(
        description='what drives it, e.g. "dht22"'
    )

    @model_validator(mode="after")
    def _setting_names(self) -> SensorEntry:
        for key in self.__pydantic_extra__ or {}:
            if not SENSOR_KEY.fullmatch(key):
                raise ValueError(f"sensor setting {key!r}: lower-case letters, digits and _")
        return self


class ConfigChange(BaseModel):
    """PUT /api/v1/devices/{id}/config: the keys to change; the others keep their value."""

    model_config = ConfigDict(extra="forbid")

    interval_s: Annotated[float, Field(ge=1, le=86400)] | None = Field(
        None, description="seconds between readings (1-86400)"
    )
    sensors: Annotated[list[SensorEntry], Field(min_length=1, max_length=SENSORS_MAX)] | None = (
        Field(
            None,
            description='the sensors, as config.json has them: [{"kind": "dht22", "pin": 4}]',
        )
    )
    app: dict[str, JsonValue] | None = Field(
        None, description=f"free settings for your own code, at most {APP_MAX_BYTES} bytes of JSON"
    )

    @field_validator("app")
    @classmethod
    def _app(cls, value):
        if value is not None and len(compact(value)) > APP_MAX_BYTES:
            raise ValueError(f"app is {len(compact(value))} bytes of JSON; at most {APP_MAX_BYTES}")
        return value

    def changes(self) -> dict:
        changes = self.model_dump(exclude_unset=True)  # sensors as plain dicts
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

    version: Annotated[WholeNumber, Field(ge=0, le=VERSION_MAX)]
    status: Literal["applied", "rejected"]
    error: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("error")
    @classmethod
    def _short(cls, value):
        return None if value is None else value[:ERROR_MAX]
