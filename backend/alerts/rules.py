"""Alert rules: the JSON people write, checked field by field, and its normal form.

    {"name": "too hot", "device_id": "dev-1", "field": "temperature",
     "condition": "above", "warn": 25, "crit": 30, "clear": 28, "for": "5m",
     "recipients": ["ops@example.com", "webhook:https://hooks.example.com/x"],
     "repeat_every": "1h", "notify_on_recovery": true}

Kinds: `threshold` (the default), `deadman` (a device silent for `for` is crit) and
`external` (no devices: a receiver for checks run by a real InfluxDB 2 or Kapacitor,
posted to /api/v1/notifications/...). `validate_rule` raises RuleInvalid naming the
field at fault, which the API turns into a 422.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from fieldline_backend.common.durations import format_duration, parse_duration

KINDS = ("threshold", "deadman", "external")
CONDITIONS = ("above", "below", "outside", "inside")
LEVELS = ("ok", "info", "warn", "crit")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TAG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
WEBHOOK_PREFIX = "webhook:"
MAX_RECIPIENTS = 20
KNOWN_KEYS = {
    "name", "kind", "enabled", "device_id", "selector", "field", "condition", "warn",
    "crit", "clear", "for", "recipients", "repeat_every", "notify_on_recovery",
}  # fmt: skip


class RuleInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleInvalid(field, "must be a finite number")
    return float(value)


def _pair(field: str, value: Any) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise RuleInvalid(field, "must be a [low, high] pair for outside/inside conditions")
    low, high = _number(field, value[0]), _number(field, value[1])
    if not low < high:
        raise RuleInvalid(field, f"low ({low}) must be below high ({high})")
    return [low, high]


def _duration(field: str, value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise RuleInvalid(field, str(error)) from None


def _recipients(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RuleInvalid("recipients", "give a list of at least one email address or webhook")
    if len(value) > MAX_RECIPIENTS:
        raise RuleInvalid("recipients", f"at most {MAX_RECIPIENTS} recipients per rule")
    found: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise RuleInvalid("recipients", "each recipient is a string")
        item = item.strip()
        if item.startswith(WEBHOOK_PREFIX):
            url = item[len(WEBHOOK_PREFIX) :]
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
                raise RuleInvalid(
                    "recipients", f"{item!r}: write webhooks as webhook:https://host/path"
                )
        elif not EMAIL.match(item) or len(item) > 254:
            raise RuleInvalid("recipients", f"{item!r} is not an email address or webhook:URL")
        if item not in found:
            found.append(item)
    return found


def _selector(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise RuleInvalid("selector", 'give an object of metadata tags, e.g. {"room": "lab"}')
    if len(value) > 16:
        raise RuleInvalid("selector", "at most 16 tags")
    selector = {}
    for key, tag in value.items():
        if not isinstance(key, str) or not TAG_KEY.match(key):
            raise RuleInvalid("selector", f"{key!r} is not a metadata tag name")
        if isinstance(tag, bool):
            tag = "true" if tag else "false"
        if not isinstance(tag, str | int | float) or len(str(tag)) > 200:
            raise RuleInvalid("selector", f"the value of {key!r} must be a short string or number")
        selector[key] = str(tag)
    return selector


def _check_order(condition: str, warn, crit) -> None:
    """warn is the milder threshold: reached before crit as a value gets worse."""
    if warn is None or crit is None:
        return
    if condition == "above" and not warn < crit:
        raise RuleInvalid("warn", f"for 'above', warn ({warn}) must be below crit ({crit})")
    if condition == "below" and not warn > crit:
        raise RuleInvalid("warn", f"for 'below', warn ({warn}) must be above crit ({crit})")
    if condition == "outside" and not (crit[0] <= warn[0] and warn[1] <= crit[1]):
        raise RuleInvalid("warn", "for 'outside', the warn range must lie within the crit range")
    if condition == "inside" and not (warn[0] <= crit[0] and crit[1] <= warn[1]):
        raise RuleInvalid("warn", "for 'inside', the crit range must lie within the warn range")


def _check_clear(condition: str, top, clear) -> None:
    """clear sits on the good side of the top threshold (crit, else warn)."""
    if condition == "above" and not clear < top:
        raise RuleInvalid("clear", f"for 'above', clear ({clear}) must be below {top}")
    if condition == "below" and not clear > top:
        raise RuleInvalid("clear", f"for 'below', clear ({clear}) must be above {top}")
    if condition == "outside" and not (top[0] < clear[0] and clear[1] < top[1]):
        raise RuleInvalid("clear", f"for 'outside', clear must lie strictly within {top}")
    if condition == "inside" and not (clear[0] < top[0] and top[1] < clear[1]):
        raise RuleInvalid("clear", f"for 'inside', clear must lie strictly around {top}")


def validate_rule(data: Any) -> dict:
    """The normal form of a rule (what is stored), or RuleInvalid naming the field.

    Checked in a fixed order (the first fault is the one named): the fields every kind
    has, then what it watches (device or selector), then a threshold rule's thresholds."""
    rule = _common_fields(data)
    if rule["kind"] == "external":
        return rule
    _target(data, rule)
    if rule["kind"] == "deadman":
        if rule["for_s"] <= 0:
            raise RuleInvalid("for", "a deadman needs a silence duration, e.g. '10m'")
        return rule
    _thresholds(data, rule)
    return rule


def _common_fields(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RuleInvalid("body", "a rule is a JSON object")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise RuleInvalid(unknown[0], f"unknown field; known: {', '.join(sorted(KNOWN_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise RuleInvalid("name", "give a name of 1 to 200 characters")
    kind = data.get("kind", "threshold")
    if kind not in KINDS:
        raise RuleInvalid("kind", f"must be one of {', '.join(KINDS)}")
    enabled = data.get("enabled", True)
    notify_on_recovery = data.get("notify_on_recovery", True)
    for key, value in (("enabled", enabled), ("notify_on_recovery", notify_on_recovery)):
        if not isinstance(value, bool):
            raise RuleInvalid(key, "must be true or false")
    rule: dict[str, Any] = {
        "name": name.strip(),
        "kind": kind,
        "enabled": enabled,
        "device_id": None,
        "selector": None,
        "field": None,
        "condition": None,
        "warn": None,
        "crit": None,
        "clear": None,
        "for_s": _duration("for", data.get("for", 0)),
        "recipients": _recipients(data.get("recipients")),
        "repeat_every_s": None,
        "notify_on_recovery": notify_on_recovery,
    }
    repeat = data.get("repeat_every")
    if repeat not in (None, "never"):
        rule["repeat_every_s"] = _duration("repeat_every", repeat)
        if rule["repeat_every_s"] < 1:
            raise RuleInvalid("repeat_every", "repeat at most once a second, or give null/never")
    return rule


def _target(data: dict, rule: dict[str, Any]) -> None:
    """Exactly one of device_id or selector."""
    device_id, selector = data.get("device_id"), data.get("selector")
    if (device_id is None) == (selector is None):
        raise RuleInvalid("device_id", "give exactly one of device_id or selector")
    if device_id is not None:
        if not isinstance(device_id, str) or not 1 <= len(device_id) <= 64:
            raise RuleInvalid("device_id", "must be a device id string")
        rule["device_id"] = device_id
    else:
        rule["selector"] = _selector(selector)


def _thresholds(data: dict, rule: dict[str, Any]) -> None:
    """A threshold rule's field, condition and warn/crit/clear, in a consistent order."""
    field = data.get("field")
    if not isinstance(field, str) or not FIELD_NAME.match(field):
        raise RuleInvalid("field", "name a telemetry value, e.g. 'temperature'")
    condition = data.get("condition")
    if condition not in CONDITIONS:
        raise RuleInvalid("condition", f"must be one of {', '.join(CONDITIONS)}")
    ranged = condition in ("outside", "inside")
    convert = _pair if ranged else _number
    for key in ("warn", "crit", "clear"):
        if data.get(key) is not None:
            rule[key] = convert(key, data[key])
    if rule["warn"] is None and rule["crit"] is None:
        raise RuleInvalid("crit", "give a warn and/or a crit threshold")
    _check_order(condition, rule["warn"], rule["crit"])
    if rule["clear"] is not None:
        # The example rule (warn 25, crit 30, clear 28) ties clear to the top threshold.
        top = rule["crit"] if rule["crit"] is not None else rule["warn"]
        _check_clear(condition, top, rule["clear"])
    rule["field"], rule["condition"] = field, condition


def rule_to_json(rule: dict) -> dict:
    """The public JSON of a stored rule (durations written the way people write them)."""
    out = {key: value for key, value in rule.items() if key not in ("for_s", "repeat_every_s")}
    out["for"] = format_duration(rule["for_s"])
    repeat = rule.get("repeat_every_s")
    out["repeat_every"] = format_duration(repeat) if repeat else None
    return out


def rule_to_input(rule: dict) -> dict:
    """A stored rule back into input JSON, to apply a PATCH on and validate again."""
    out = {k: v for k, v in rule_to_json(rule).items() if v is not None}
    out.pop("id", None)
    for key in ("owner_id", "created_at", "updated_at"):
        out.pop(key, None)
    return out
