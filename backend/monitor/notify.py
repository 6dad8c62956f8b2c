"""The monitor's results in the InfluxDB 2 HTTP notification-endpoint format, the one
a real InfluxDB 2 check posts, plus `_fieldline` with what a good mail needs."""

from __future__ import annotations

from datetime import UTC, datetime

from fieldline_backend.monitor.devices import WatchedDevice
from fieldline_backend.monitor.levels import threshold_of


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def threshold_payload(rule: dict, device: WatchedDevice, level: str, state, now_ms: int) -> dict:
    field, value = rule["field"], state.last_value
    threshold = threshold_of(rule, level)
    if level == "ok":
        message = f"{device.name}: {field} {_value_text(value)} is back to normal"
    else:
        message = (
            f"{device.name}: {field} {_value_text(value)} {rule['condition']} {threshold} ({level})"
        )
    # No reading yet (a first look at a silent device): the evaluation time stands in.
    payload = _base(rule, device, level, state.last_ts or now_ms, message, "threshold")
    if value is not None:
        payload[field] = value
    payload["_fieldline"] = {
        "field": field,
        "value": value,
        "condition": rule["condition"],
        "threshold": threshold,
        "metadata": device.metadata,
        "last_values": [[ts, v] for ts, v in state.recent],
    }
    return payload


def deadman_payload(rule: dict, device: WatchedDevice, level: str, last_seen, now_ms) -> dict:
    if level == "ok":
        message = f"{device.name} is sending again"
    else:
        silent = (
            "never sent anything" if last_seen is None else f"silent since {rfc3339(last_seen)}"
        )
        message = f"{device.name} is offline: {silent}"
    payload = _base(rule, device, level, now_ms, message, "deadman")
    payload["_fieldline"] = {"metadata": device.metadata, "last_seen": last_seen}
    return payload


def late_payload(rule: dict, device: WatchedDevice, digest) -> dict:
    info = digest.as_json()
    message = (
        f"{device.name}: {info['readings']} delayed readings from {rfc3339(info['first_ts'])} "
        f"to {rfc3339(info['last_ts'])}; {info['breaches']} breached {rule['field']}"
    )
    payload = _base(rule, device, "info", info["last_ts"], message, "threshold")
    payload[rule["field"]] = info["worst_value"]
    payload["_fieldline"] = {
        "field": rule["field"],
        "value": info["worst_value"],
        "condition": rule["condition"],
        "metadata": device.metadata,
        "late": info,
    }
    return payload


def _base(rule, device, level, ts_ms, message, check_type) -> dict:
    return {
        "_check_id": rule["id"],
        "_check_name": rule["name"],
        "_level": level,
        "_message": message,
        "_time": rfc3339(ts_ms),
        "_type": check_type,
        "_source_measurement": "telemetry",
        "device_id": device.id,
        "device_name": device.name,
    }
