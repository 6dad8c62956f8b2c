"""What a rule would have sent over a past period, from the stored history: the same
evaluation and decisions as the live path, replayed over the readings."""

from __future__ import annotations

from fieldline_backend.alerts.decisions import simulate
from fieldline_backend.infra.timeseries import RECEIVED_FIELD, TimeSeriesReader
from fieldline_backend.monitor.devices import WatchedDevice
from fieldline_backend.monitor.evaluation import replay

MAX_EVENTS = 1000


def deadman_changes(rule: dict, stamps: list[int], start_ms: int, stop_ms: int):
    """Offline whenever the gap to the next reading (or the period's end) reaches `for`."""
    hold = int(rule["for_s"] * 1000)
    changes = []
    previous = start_ms if not stamps else None
    for ts in stamps:
        if previous is not None and ts - previous >= hold:
            changes += [(previous + hold, "crit", None), (ts, "ok", None)]
        previous = ts
    if previous is not None and stop_ms - previous >= hold:
        changes.append((previous + hold, "crit", None))
    return changes


def preview(
    store: TimeSeriesReader, rule: dict, devices: list[WatchedDevice], start_ms: int, stop_ms: int
):
    ids = [d.id for d in devices]
    events: list[dict] = []
    per_device: dict[str, int] = {}
    if rule["kind"] == "deadman":
        found = store.query(ids, [RECEIVED_FIELD], start_ms, stop_ms) if ids else {}
        for device in devices:
            stamps = [ts for ts, _ in found.get(device.id, {}).get(RECEIVED_FIELD, [])]
            sent = simulate(rule, deadman_changes(rule, stamps, start_ms, stop_ms), stop_ms)
            per_device[device.id] = len(sent)
            events += [{"device_id": device.id, **item} for item in sent]
    else:
        found = store.query(ids, [rule["field"]], start_ms, stop_ms) if ids else {}
        for device in devices:
            series = found.get(device.id, {}).get(rule["field"], [])
            numeric = [(ts, float(v)) for ts, v in series if isinstance(v, bool | int | float)]
            sent = simulate(rule, replay(rule, numeric), stop_ms)
            per_device[device.id] = len(sent)
            events += [{"device_id": device.id, **item} for item in sent]
    events.sort(key=lambda item: item["ts"])
    return {
        "start": start_ms,
        "stop": stop_ms,
        "devices": len(devices),
        "notifications": len(events) * len(rule["recipients"]),
        "events": len(events),
        "per_device": per_device,
        "timeline": events[:MAX_EVENTS],
        "truncated": len(events) > MAX_EVENTS,
    }
