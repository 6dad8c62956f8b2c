"""Commands to devices on the wire (docs/fleet.md): what a POST may send, what GET
answers, what the device says on devices/<id>/commands/result.

States: pending (stored, sent) -> delivered (the device said it has it) -> succeeded |
failed; expired when the device did not take it before `expires_at`. Bounds: a name is
a short identifier, args at most ARGS_MAX_BYTES of JSON, a result at most
RESULT_MAX_BYTES, at most PENDING_MAX commands waiting per device (the broker queues
them for a device that is offline), ttl_s 1 s to 1 day.
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
    field_validator,
    model_validator,
)

COMMAND_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")
COMMAND_ID = re.compile(r"cmd-[a-z2-7]{16}")
ARGS_MAX_BYTES = 1024
RESULT_MAX_BYTES = 1024
PENDING_MAX = 20
TTL_DEFAULT_S = 300
BUILT_IN = ("reboot", "ping", "sync_time", "flush")

CommandStatus = Literal["pending", "delivered", "succeeded", "failed", "expired"]
FINAL = ("succeeded", "failed", "expired")


def json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


class CommandRequest(BaseModel):
    """POST /api/v1/devices/{id}/commands."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern="^" + COMMAND_NAME.pattern + "$")] = Field(
        description=f"built in: {', '.join(BUILT_IN)}; or one the firmware registered "
        "(lower-case letters, digits, _; at most 32)"
    )
    args: dict[str, JsonValue] = Field(
        default_factory=dict, description=f"at most {ARGS_MAX_BYTES} bytes of JSON"
    )
    ttl_s: Annotated[int, Field(ge=1, le=86400)] = Field(
        TTL_DEFAULT_S, description="seconds the device has to take it before it expires"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COMMAND_NAME.fullmatch(value):
            raise ValueError("name: lower-case letters, digits and _, at most 32 (e.g. reboot)")
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict) -> dict:
        if json_size(value) > ARGS_MAX_BYTES:
            raise ValueError(f"args is {json_size(value)} bytes of JSON; at most {ARGS_MAX_BYTES}")
        return value


class Command(BaseModel):
    id: str
    device_id: str
    name: str
    args: dict[str, JsonValue]
    status: CommandStatus
    result: JsonValue = None
    error: str | None = None
    created_at: datetime
    expires_at: datetime
    delivered_at: datetime | None = None
    finished_at: datetime | None = None


class CommandReport(BaseModel):
    """The device's payload on devices/<id>/commands/result: {"id", "status": "delivered"}
    when it takes the command, then {"id", "ok": true, "result"} or {"id", "ok": false,
    "error"} when it is done."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: Literal["delivered"] | None = None
    ok: bool | None = None
    result: JsonValue = None
    error: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not COMMAND_ID.fullmatch(value):
            raise ValueError("id is not a command id (cmd-...)")
        return value

    @field_validator("result")
    @classmethod
    def _result(cls, value):
        if json_size(value) > RESULT_MAX_BYTES:
            raise ValueError(f"result is larger than {RESULT_MAX_BYTES} bytes of JSON")
        return value

    @field_validator("error")
    @classmethod
    def _short(cls, value):
        return None if value is None else value[:300]

    @model_validator(mode="after")
    def _says_something(self) -> CommandReport:
        if self.status is None and self.ok is None:
            raise ValueError('a report needs "status": "delivered" or "ok"')
        return self


def _rfc3339_text(value):
    if isinstance(value, datetime):  # made in this process (CommandOutcome.of)
        return value
    if not isinstance(value, str):
        raise ValueError("at must be an RFC 3339 time string")
    return value


# When the report arrived: a time string on the wire (a number is not taken for one).
Arrival = Annotated[datetime, Field(strict=False), BeforeValidator(_rfc3339_text)]


class CommandOutcome(BaseModel):
    """A device's report as storage passes it on to the devices service (internal):
    what it said, as one state, and when it arrived."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern="^" + COMMAND_ID.pattern + "$")]
    state: Literal["delivered", "succeeded", "failed"]
    result: JsonValue = None
    error: Annotated[str, Field(max_length=300)] | None = None
    at: Arrival

    @classmethod
    def of(cls, report: CommandReport, at: datetime) -> CommandOutcome:
        state = {None: "delivered", True: "succeeded", False: "failed"}[report.ok]
        return cls(id=report.id, state=state, result=report.result, error=report.error, at=at)
