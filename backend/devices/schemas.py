"""What a device may be called and tagged with: the one place the rules live, used by
the public routes (gateway) and the internal API (devices) alike.

Metadata values become InfluxDB tags on every reading, so the metadata is a flat object of
at most 32 keys named like tag keys, with short strings, finite numbers or booleans as
values. `device_id`, `owner` and `time` are refused as keys: the first two are the tags
every reading carries already, and InfluxDB 1.x refuses `time` as a tag key.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

NAME_MAX = 128
METADATA_MAX_KEYS = 32
METADATA_VALUE_MAX = 256
METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
RESERVED_KEYS = frozenset({"device_id", "owner", "time"})
INT_LIMIT = 2**63  # what InfluxDB and PostgreSQL hold as an integer

MetadataValue = str | int | float | bool


def check_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("name must be a string")
    name = value.strip()
    if not name:
        raise ValueError("name is empty; give the device a name of 1-128 characters")
    if len(name) > NAME_MAX:
        raise ValueError(f"name is {len(name)} characters long; at most {NAME_MAX} allowed")
    if not name.isprintable():
        raise ValueError("name must be printable text (no control characters or line breaks)")
    return name


def check_metadata(value: object) -> dict[str, MetadataValue]:
    if not isinstance(value, dict):
        raise ValueError('metadata must be a flat JSON object, e.g. {"room": "kitchen"}')
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"metadata has {len(value)} keys; at most {METADATA_MAX_KEYS} allowed")
    clean: dict[str, MetadataValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
            raise ValueError(
                f"metadata key {key!r} must match [A-Za-z_][A-Za-z0-9_]{{0,63}} "
                "(letters, digits, underscore; not starting with a digit)"
            )
        if key in RESERVED_KEYS:
            raise ValueError(f"metadata key {key!r} is reserved; choose another name")
        clean[key] = _check_value(key, item)
    return clean


def _check_value(key: str, item: object) -> MetadataValue:
    if isinstance(item, bool):
        return item
    if isinstance(item, int):
        if not -INT_LIMIT <= item < INT_LIMIT:
            raise ValueError(f"metadata[{key!r}] is out of the 64-bit integer range")
        return item
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"metadata[{key!r}] must be a finite number")
        return item
    if isinstance(item, str):
        if len(item) > METADATA_VALUE_MAX:
            raise ValueError(
                f"metadata[{key!r}] is {len(item)} characters; at most {METADATA_VALUE_MAX}"
            )
        if not item.isprintable():
            raise ValueError(f"metadata[{key!r}] must be printable text")
        return item
    raise ValueError(
        f"metadata[{key!r}] must be a string, number or boolean, not {type(item).__name__} "
        "(metadata is flat: no nested objects or lists)"
    )


class DeviceFields(BaseModel):
    """name and metadata, checked; the shape of a create request."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, examples=["greenhouse-1"])
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict,
        max_length=METADATA_MAX_KEYS,
        description="flat object: keys [A-Za-z_][A-Za-z0-9_]{0,63}, values string (<=256), "
        "number or boolean; at most 32 keys. They become tags on every reading.",
        examples=[{"room": "kitchen", "floor": 1}],
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> str:
        return check_name(value)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: object) -> dict:
        return check_metadata(value)


class DeviceCreate(DeviceFields):
    pass


class DeviceChange(BaseModel):
    """A PATCH: only the fields given change; metadata, when given, replaces the old."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    metadata: dict[str, MetadataValue] | None = Field(default=None, max_length=METADATA_MAX_KEYS)
    enabled: StrictBool | None = None  # JSON true/false only, not "no" or 0

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: object) -> dict | None:
        return None if value is None else check_metadata(value)

    def changes(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MqttCredentials(BaseModel):
    host: str
    port: int
    tls: bool
    # The CA (PEM) the device verifies the broker with (FIELDLINE_MQTT_PUBLIC_CA_FILE);
    # null when not configured: then `provision flash --ca FILE` supplies it.
    ca: str | None = None
    client_id: str
    username: str
    password: str


class Device(BaseModel):
    id: str = Field(examples=["dev-7k3qa2mx9pwd"])
    name: str
    metadata: dict[str, MetadataValue]
    owner_id: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeviceWithCredentials(Device):
    mqtt: MqttCredentials = Field(description="shown once: store the password now")


class RotatedCredentials(BaseModel):
    mqtt: MqttCredentials = Field(description="shown once: the old password stops working")


def parse_tags(tag: list[str]) -> dict[str, str]:
    """`?tag=key:value` filters (devices API and gateway alike) -> {key: value}."""
    tags = {}
    for item in tag:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise HTTPException(
                422,
                f"tag filter {item!r} must read key:value, e.g. tag=room:kitchen",
            )
        tags[key] = value
    return tags
