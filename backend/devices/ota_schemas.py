"""OTA updates on the wire (docs/ota.md): bundles and rollouts as the API shows them,
what a rollout request may ask, what a device reports on devices/<id>/ota/reported.
The public routes (gateway), the internal API (devices) and storage (which passes the
device's reports on) share these rules; every bound is in the schema, so a client
(and schemathesis) can check a request before sending it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fieldline_backend.devices.command_schemas import Arrival
from fieldline_backend.devices.config_schemas import WholeNumber
from fieldline_backend.devices.schemas import METADATA_KEY, METADATA_VALUE_MAX, parse_tags

BUNDLE_ID = re.compile(r"[0-9a-f]{64}")
ROLLOUT_ID = re.compile(r"ro-[a-z2-7]{16}")
DEVICE_ID = re.compile(r"dev-[a-z2-7]{12}")  # as the registry makes them
VERSION = re.compile(r"[0-9]{1,5}(\.[0-9]{1,5}){0,3}")
ROLLOUT_DEVICES_MAX = 1000
ROLLOUT_TAGS_MAX = 8
# The bundle format's bound (fieldline_provision.bundle.MAX_BUNDLE_BYTES, which reads
# them; tests/registry/test_api_bundles.py checks the two agree): stated here so that
# the routes bound the upload without loading the format's code.
BUNDLE_MAX_BYTES = 512 * 1024
ERROR_MAX = 300

BundleId = Annotated[str, Field(pattern="^" + BUNDLE_ID.pattern + "$")]
RolloutId = Annotated[str, Field(pattern="^" + ROLLOUT_ID.pattern + "$")]
DeviceId = Annotated[str, Field(pattern="^" + DEVICE_ID.pattern + "$")]
Version = Annotated[str, Field(pattern="^" + VERSION.pattern + "$")]
TagFilter = Annotated[str, Field(pattern=f"^{METADATA_KEY.pattern}:.{{0,{METADATA_VALUE_MAX}}}$")]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

RolloutState = Literal["canary", "rolling", "completed", "halted", "cancelled"]
RUNNING = ("canary", "rolling")  # a rollout that still offers
DeviceState = Literal[
    "queued", "offered", "downloading", "staged", "rebooting", "confirmed", "rolled_back", "failed"
]
TERMINAL = ("confirmed", "rolled_back", "failed")
FAILURES = ("rolled_back", "failed")
# What a device reports: its update's states from downloading on, or just its version.
ReportedState = Literal[
    "downloading", "staged", "rebooting", "confirmed", "rolled_back", "failed", "running"
]


def bundle_body_openapi() -> dict:
    """The upload's request body in the OpenAPI document (a raw tar, not JSON)."""
    schema = {"type": "string", "format": "binary", "maxLength": BUNDLE_MAX_BYTES}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": schema}},
        }
    }


def bundle_too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"a bundle is at most {BUNDLE_MAX_BYTES} bytes (docs/ota.md); leave files out of "
        "it, or build it as .mpy (fieldline bundle --mpy auto)",
        headers={"Connection": "close"},
    )


class BundleFileInfo(BaseModel):
    path: str
    size: int
    sha256: str


class BundleInfo(BaseModel):
    """A stored bundle (the files' bytes are served to devices only)."""

    id: str = Field(description="SHA-256 (hex) of the bundle's manifest.json")
    version: str
    mpy: str | None = Field(description="the bytecode version its .mpy files need; null: source")
    files: list[BundleFileInfo]
    size: int = Field(description="bytes of the tar")
    created_at: datetime


def _devices_or_tag(schema: dict) -> None:
    for name in ("devices", "tag"):
        schema["properties"][name].pop("default", None)
    schema["oneOf"] = [{"required": ["devices"]}, {"required": ["tag"]}]


class RolloutRequest(BaseModel):
    """POST /api/v1/rollouts."""

    bundle_id: BundleId = Field(description="a bundle of yours (POST /api/v1/bundles)")
    # Exactly one of devices and tag (the oneOf below); typed without null so that the
    # schema does not invite one.
    devices: list[DeviceId] = Field(
        None,
        min_length=1,
        max_length=ROLLOUT_DEVICES_MAX,
        json_schema_extra={"uniqueItems": True},
        description=f"1-{ROLLOUT_DEVICES_MAX} ids of your devices, each once",
    )
    tag: list[TagFilter] = Field(
        None,
        min_length=1,
        max_length=ROLLOUT_TAGS_MAX,
        description="key:value filters, all must match (as GET /api/v1/devices?tag=); "
        "the devices they select when the rollout starts",
    )
    canary_fraction: Fraction = Field(
        0.1, description="share of the devices offered first (ceil(fraction * n), at least 1)"
    )
    max_failure_ratio: Fraction = Field(
        0.2, description="failures per finished device above which the rollout halts"
    )
    allow_downgrade: bool = Field(False, description="let devices take an older version")

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # "yes" is not true
        json_schema_extra=_devices_or_tag,
    )

    @field_validator("devices")
    @classmethod
    def _each_once(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("devices: name each device once")
        return value

    @model_validator(mode="after")
    def _one_selector(self) -> RolloutRequest:
        if (self.devices is None) == (self.tag is None):
            raise ValueError(
                'name the devices ("devices": [ids]) or select them by tag '
                '("tag": ["key:value"]), one of the two'
            )
        return self

    def tags(self) -> dict[str, str]:
        return parse_tags(self.tag or [])


class RolloutDevice(BaseModel):
    device_id: str
    canary: bool
    state: DeviceState
    progress: int | None = Field(None, description="0-100 while downloading")
    error: str | None = None
    updated_at: datetime


class Rollout(BaseModel):
    id: str
    bundle_id: str
    version: str
    state: RolloutState
    canary_fraction: float
    max_failure_ratio: float
    allow_downgrade: bool
    counts: dict[str, int] = Field(description="devices per state")
    devices: list[RolloutDevice]
    created_at: datetime
    updated_at: datetime
    halted_reason: str | None = None


class DeviceRolloutEntry(RolloutDevice):
    rollout_id: str
    rollout_state: RolloutState
    bundle_id: str
    version: str


class DeviceUpdate(BaseModel):
    """GET /api/v1/devices/{id}/update."""

    rollout: DeviceRolloutEntry | None = Field(description="the device's newest rollout entry")
    running_version: str | None = Field(description="the version it last said it runs")
    running_reported_at: datetime | None = None


class OtaReport(BaseModel):
    """The device's payload on devices/<id>/ota/reported."""

    model_config = ConfigDict(extra="ignore")

    rollout: RolloutId | None = None  # absent on a plain `running`
    version: Version
    state: ReportedState
    progress: Annotated[WholeNumber, Field(ge=0, le=100)] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("error")
    @classmethod
    def _short(cls, value):
        return None if value is None else value[:ERROR_MAX]

    @model_validator(mode="after")
    def _names_its_rollout(self) -> OtaReport:
        if self.state != "running" and self.rollout is None:
            raise ValueError(f'a "{self.state}" report names its "rollout"')
        return self


class OtaReportInternal(OtaReport):
    """storage passes the device's report on with the time it arrived."""

    model_config = ConfigDict(extra="forbid")

    at: Arrival
