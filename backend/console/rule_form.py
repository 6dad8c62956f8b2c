"""The rule form: a posted form turned into the API's rule JSON, and a stored rule
turned back into form values. Only threshold rules on one device are edited here;
other kinds (selector, deadman, external) are listed and can be managed through the API.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from fieldline_backend.common.numbers import ascii_float

CONDITIONS = ("above", "below", "outside", "inside")
PAIRED = ("outside", "inside")
_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class ParsedRule:
    rule: dict
    errors: list[str] = field(default_factory=list)


def _number(text: str, what: str, errors: list[str]):
    value = ascii_float(text)  # not float(): it takes "٣", "1_0", "inf"
    if value is None:
        errors.append(f"{what}: {text[:40]!r} is not a number")
        return None
    if not math.isfinite(value):
        errors.append(f"{what}: must be a finite number")
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _threshold(text: str, what: str, paired: bool, errors: list[str]):
    text = (text or "").strip()
    if not text:
        return None
    if not paired:
        return _number(text, what, errors)
    parts = [p for p in _SPLIT.split(text) if p]
    if len(parts) != 2:
        errors.append(f"{what}: give two numbers, low and high, e.g. 10, 30")
        return None
    pair = [_number(p, what, errors) for p in parts]
    return None if None in pair else pair


def rule_from_form(form: dict) -> ParsedRule:
    """The API's rule JSON from the form's fields; problems the API could not name
    well (text in a number box) are collected as errors instead."""
    errors: list[str] = []
    condition = str(form.get("condition") or "above")
    paired = condition in PAIRED
    rule: dict = {
        "name": str(form.get("name", "")).strip(),
        "device_id": str(form.get("device_id", "")),
        "field": str(form.get("field", "")).strip(),
        "condition": condition,
        "for": str(form.get("for") or "0s").strip(),
        "recipients": [r for r in _SPLIT.split(str(form.get("recipients", ""))) if r],
        "repeat_every": str(form.get("repeat_every") or "").strip() or None,
        "notify_on_recovery": form.get("notify_on_recovery") == "on",
        "enabled": form.get("enabled") == "on",
    }
    for key in ("warn", "crit", "clear"):
        value = _threshold(str(form.get(key, "")), key, paired, errors)
        if value is not None:
            rule[key] = value
    return ParsedRule(rule, errors)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def form_from_rule(rule: dict) -> dict:
    """Form values for a stored (or half-typed) rule."""
    return {
        "name": rule.get("name", ""),
        "device_id": rule.get("device_id") or "",
        "field": rule.get("field") or "",
        "condition": rule.get("condition") or "above",
        "warn": _text(rule.get("warn")),
        "crit": _text(rule.get("crit")),
        "clear": _text(rule.get("clear")),
        "for": _text(rule.get("for")) or "0s",
        "recipients": "\n".join(rule.get("recipients") or []),
        "repeat_every": _text(rule.get("repeat_every")),
        "notify_on_recovery": rule.get("notify_on_recovery", True),
        "enabled": rule.get("enabled", True),
    }


def editable(rule: dict) -> bool:
    return rule.get("kind", "threshold") == "threshold" and bool(rule.get("device_id"))
