"""The telemetry payload contract: what a device may publish, checked before storing.

One JSON object `{"ts": ms?, "seq": int?, "boot": int?, "dropped": int?, "values": {...}}`
or a non-empty array of them; values are numbers or booleans named
`[A-Za-z_][A-Za-z0-9_]{0,63}`, at most 64 per reading; a payload is at most 64 KiB.
`dropped` (optional) is how many readings the device dropped from its offline buffer
since its previous report. Anything else raises InvalidPayload with a reason a person
can act on; that reason travels with the dead letter.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_VALUES = 64
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
MAX_TS_MS = 9_223_372_036_853  # InfluxDB's last representable millisecond (2262)
MAX_COUNTER = 2**63 - 1


class InvalidPayload(ValueError):
    pass


@dataclass(frozen=True)
class Reading:
    values: dict[str, float | bool]
    ts_ms: int | None = None
    seq: int | None = None
    boot: int | None = None
    dropped: int | None = None


def _reject_constant(name: str):
    raise InvalidPayload(f"{name} is not a number JSON allows; send finite numbers only")


# One decoder for every payload: json.loads with an option builds a new one per call.
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def parse_payload(body: bytes) -> list[Reading]:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload of {len(body)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"payload is not UTF-8 text: {error.reason} at byte {error.start}"
        raise InvalidPayload(reason) from None
    try:
        document = _decode(text)
    except RecursionError:
        raise InvalidPayload("payload is nested too deeply to be a reading") from None
    except json.JSONDecodeError as error:
        raise InvalidPayload(f"payload is not JSON: {error.msg} at char {error.pos}") from None
    if isinstance(document, dict):
        return [_reading(document, "")]
    if isinstance(document, list):
        if not document:
            raise InvalidPayload("payload is an empty batch; send at least one reading")
        return [_reading(item, f"reading {index}: ") for index, item in enumerate(document)]
    raise InvalidPayload("payload must be a JSON object or an array of objects")


def _reading(item, where: str) -> Reading:
    if not isinstance(item, dict):
        raise InvalidPayload(f"{where}a reading must be a JSON object")
    values = item.get("values")
    if not isinstance(values, dict) or not values:
        raise InvalidPayload(f"{where}'values' must be a non-empty object of named values")
    if len(values) > MAX_VALUES:
        raise InvalidPayload(f"{where}{len(values)} values; at most {MAX_VALUES} per reading")
    clean: dict[str, float | bool] = {}
    for name, value in values.items():
        if not NAME.match(name):
            raise InvalidPayload(
                f"{where}value name {name[:80]!r} must match [A-Za-z_][A-Za-z0-9_]{{0,63}}"
            )
        clean[name] = _value(value, f"{where}value {name!r}")
    return Reading(
        values=clean,
        ts_ms=_counter(item, "ts", where, upper=MAX_TS_MS),
        seq=_counter(item, "seq", where),
        boot=_counter(item, "boot", where),
        dropped=_counter(item, "dropped", where),
    )


def _value(value, what: str) -> float | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise InvalidPayload(f"{what} is too large for a 64-bit float") from None
        if not math.isfinite(number):
            raise InvalidPayload(f"{what} is not a finite number")
        return number
    raise InvalidPayload(f"{what} must be a number or a boolean, not {type(value).__name__}")


def _counter(item: dict, key: str, where: str, upper: int = MAX_COUNTER) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise InvalidPayload(f"{where}'{key}' must be a whole number from 0 to {upper}")
    return value


def parse_drop_report(body: bytes) -> tuple[int, int]:
    """`{"dropped": n, "boot": b}` on devices/<id>/status/buffer: (boot, dropped), where
    dropped counts since that boot began (the SDK keeps the count in RAM)."""
    readings_like = parse_json_object(body)
    boot = _counter(readings_like, "boot", "")
    dropped = _counter(readings_like, "dropped", "")
    if boot is None or dropped is None:
        raise InvalidPayload('a drop report is {"dropped": <count>, "boot": <boot>}')
    return boot, dropped


def parse_json_object(body: bytes) -> dict:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload of {len(body)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    try:
        document = _decode(body.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError):
        raise InvalidPayload("payload is not a JSON object in UTF-8") from None
    if not isinstance(document, dict):
        raise InvalidPayload("payload must be a JSON object")
    return document
