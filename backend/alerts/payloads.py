"""Check notifications in, one shape out: the InfluxDB 2 HTTP notification-endpoint
JSON and Kapacitor's alert POST JSON both become `Notification`s.

InfluxDB 2 (what the monitor posts too): `_check_id`, `_check_name`, `_level`
(ok/info/warn/crit/unknown), `_message`, `_time` (RFC 3339), then the series' tags as
strings and its fields as numbers; the monitor adds `_fieldline` (thresholds, last
values, device metadata, late-data digest). Kapacitor: `id`, `message`, `details`,
`time`, `level` (OK/INFO/WARNING/CRITICAL), `data.series[{name, tags, columns, values}]`.
`PayloadInvalid` names what is wrong; the API turns it into a 422.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from fieldline_backend.common import times

INFLUX_LEVELS = {"ok": "ok", "info": "info", "warn": "warn", "crit": "crit", "unknown": "info"}
KAPACITOR_LEVELS = {"OK": "ok", "INFO": "info", "WARNING": "warn", "CRITICAL": "crit"}


class PayloadInvalid(ValueError):
    pass


@dataclass
class Notification:
    rule_id: str
    check_name: str
    level: str  # ok, info, warn, crit
    message: str
    time_ms: int
    device_key: str  # what the state is kept per: device id, else the series
    device_id: str | None = None
    device_name: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    field: str | None = None
    value: float | None = None
    kind: str = "status"  # status; late (a backlog digest)
    details: dict = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "check_name": self.check_name,
            "level": self.level,
            "message": self.message,
            "time_ms": self.time_ms,
            "device_key": self.device_key,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "tags": self.tags,
            "field": self.field,
            "value": self.value,
            "kind": self.kind,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict) -> Notification:
        return cls(**data)


def parse_time_ms(value: Any, what: str) -> int:
    try:
        return times.parse_time_ms(value, what)
    except times.TimeInvalid as error:
        raise PayloadInvalid(str(error)) from None


def _text(data: dict, key: str, required: bool = True, limit: int = 2000) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise PayloadInvalid(f"{key}: required, a string")
    return value[:limit]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _series_key(tags: dict[str, str], fallback: str) -> str:
    if tags.get("device_id"):
        return tags["device_id"][:200]
    if not tags:
        return fallback[:200]
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))[:200]


def parse_influxdb(data: Any, rule_id: str | None = None) -> Notification:
    """One InfluxDB 2 notification. rule_id (from the URL) wins over `_check_id`."""
    if not isinstance(data, dict):
        raise PayloadInvalid("an InfluxDB 2 notification is a JSON object")
    level_text = _text(data, "_level")
    if level_text not in INFLUX_LEVELS:
        raise PayloadInvalid(f"_level: {level_text!r} is not one of {', '.join(INFLUX_LEVELS)}")
    check_id = _text(data, "_check_id", required=rule_id is None, limit=200)
    time_ms = parse_time_ms(data.get("_time", data.get("_status_timestamp")), "_time")
    tags, fields = {}, {}
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if isinstance(value, str):
            tags[key[:64]] = value[:200]
        elif (number := _number(value)) is not None:
            fields[key[:64]] = number
    extra = data.get("_fieldline") if isinstance(data.get("_fieldline"), dict) else {}
    field_name = extra.get("field") if isinstance(extra.get("field"), str) else None
    if field_name is None and len(fields) == 1:
        field_name = next(iter(fields))  # with several, which one the check judged is unknown
    value = fields.get(field_name) if field_name else None
    if value is None and _number(extra.get("value")) is not None:
        value = _number(extra.get("value"))
    kind = "late" if extra.get("late") else "status"
    if not extra:
        extra = {"fields": fields}
    return Notification(
        rule_id=rule_id or check_id,
        check_name=_text(data, "_check_name", required=False, limit=200) or check_id,
        level=INFLUX_LEVELS[level_text],
        message=_text(data, "_message", required=False),
        time_ms=time_ms,
        device_key=_series_key(tags, check_id or "check"),
        device_id=tags.get("device_id"),
        device_name=tags.get("device_name") or tags.get("device_id"),
        tags=tags,
        field=field_name,
        value=value,
        kind=kind,
        details=extra,
    )


def _kapacitor_series(series: Any) -> tuple[dict[str, str], list[dict]]:
    """The first series of a Kapacitor alert: its tags and its last (up to 5) rows."""
    if not isinstance(series, dict):
        raise PayloadInvalid("data.series[0]: an object")
    raw_tags = series.get("tags") or {}
    if not isinstance(raw_tags, dict):
        raise PayloadInvalid("data.series[0].tags: an object")
    tags = {str(k)[:64]: str(v)[:200] for k, v in raw_tags.items()}
    columns, rows = series.get("columns") or [], series.get("values") or []
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise PayloadInvalid("data.series[0]: columns and values are lists")
    last_values = [
        dict(zip(columns, row, strict=True))
        for row in rows[-5:]
        if isinstance(row, list) and len(row) == len(columns)
    ]
    return tags, last_values


def parse_kapacitor(data: Any, rule_id: str) -> Notification:
    """One Kapacitor alert POST."""
    if not isinstance(data, dict):
        raise PayloadInvalid("a Kapacitor alert is a JSON object")
    alert_id = _text(data, "id", limit=200)
    level_text = _text(data, "level")
    if level_text not in KAPACITOR_LEVELS:
        raise PayloadInvalid(f"level: {level_text!r} is not one of {', '.join(KAPACITOR_LEVELS)}")
    time_ms = parse_time_ms(data.get("time"), "time")
    payload = data.get("data", {})
    if not isinstance(payload, dict):
        raise PayloadInvalid("data: an object with a `series` list")
    series_list = payload.get("series") or []
    if not isinstance(series_list, list):
        raise PayloadInvalid("data.series: a list")
    tags, last_values = _kapacitor_series(series_list[0]) if series_list else ({}, [])
    field_name, value = None, None
    if last_values and _number(last_values[-1].get("value")) is not None:
        # TICKscripts conventionally alert on "value"; with other columns it is
        # unknown which one the lambda judged, so all of them go into the details.
        field_name, value = "value", _number(last_values[-1]["value"])
    return Notification(
        rule_id=rule_id,
        check_name=alert_id,
        level=KAPACITOR_LEVELS[level_text],
        message=_text(data, "message", required=False),
        time_ms=time_ms,
        device_key=_series_key(tags, alert_id),
        device_id=tags.get("device_id"),
        device_name=tags.get("device_name") or tags.get("host") or tags.get("device_id"),
        tags=tags,
        field=field_name,
        value=value,
        details={
            "details": _text(data, "details", required=False, limit=20000),
            "kapacitor_rows": last_values,
        },
    )
