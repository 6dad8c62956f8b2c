"""What the console shows of OTA updates (docs/ota.md): a device's update state, a
rollout with its devices, and the rollouts list. Words for every state (the colour only
repeats them), a summary bar of the devices per state, times as the console writes
them (charts.stamp)."""

from __future__ import annotations

import math

from fieldline_backend.console.api import Api, ApiError
from fieldline_backend.console.charts import stamp

# The order a rollout's devices go through; the summary bar and the counts follow it.
DEVICE_STATES = (
    "queued", "offered", "downloading", "staged", "rebooting", "confirmed", "rolled_back",
    "failed",
)  # fmt: skip
FINISHED = ("confirmed", "rolled_back", "failed")
FAILURES = ("rolled_back", "failed")
ROLLOUT_STATES = ("canary", "rolling", "completed", "halted", "cancelled")
RUNNING = ("canary", "rolling")
CANCELLABLE = ("canary", "rolling", "halted")  # docs/ota.md: a halted one becomes cancelled
# A device downloading when its rollout halted or was cancelled goes on (docs/ota.md).
MOVING = ("downloading", "staged", "rebooting")

DEVICE_WORDS = {
    "queued": "not offered yet",
    "offered": "offered; the device has not started downloading (offline, or busy)",
    "downloading": "downloading",
    "staged": "every file verified; the device reboots into it next",
    "rebooting": "rebooting into the new version",
    "confirmed": "runs the new version",
    "rolled_back": "rolled back to its previous version",
    "failed": "refused or could not download it; keeps its version",
}
ROLLOUT_WORDS = {
    "canary": "only the canary devices are offered the bundle so far",
    "rolling": "the canaries did well; every device is offered the bundle",
    "completed": "every device confirmed, rolled back or failed",
    "halted": "too many devices failed; the devices not offered yet never will be",
    "cancelled": "stopped; offers not taken were withdrawn",
}

ROLLOUT_PHRASE = {"canary": "in its canary stage"}  # "the rollout is ..."; others: the state


def label(state: str) -> str:
    return state.replace("_", " ")


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    return f"{fraction * 100:.4g} %"


def counts_text(counts: dict[str, int]) -> str:
    """'2 confirmed, 1 downloading' in the order of DEVICE_STATES (others after)."""
    order = [s for s in DEVICE_STATES if counts.get(s)] + sorted(
        s for s in counts if s not in DEVICE_STATES and counts[s]
    )
    return ", ".join(f"{counts[s]} {label(s)}" for s in order) or "no devices"


def summary_bar(counts: dict[str, int]) -> list[dict]:
    """Segments of a 100-wide bar, one per state present, in DEVICE_STATES order."""
    total = sum(counts.values())
    segments, x = [], 0.0
    for state in [s for s in DEVICE_STATES if counts.get(s)] + sorted(
        s for s in counts if s not in DEVICE_STATES and counts[s]
    ):
        width = counts[state] / total * 100
        segments.append({"state": state, "count": counts[state], "x": round(x, 3),
                         "width": round(width, 3)})  # fmt: skip
        x += width
    return segments


def entry_view(entry: dict) -> dict:
    """A device's entry in a rollout, with what a person reads about it."""
    state = entry["state"]
    progress = entry.get("progress")
    words = DEVICE_WORDS.get(state, "")
    if state == "downloading" and progress is not None:
        words = f"downloading, {progress} %"
    return {
        **entry,
        "label": label(state),
        "words": words,
        "failure": state in FAILURES,
        "finished": state in FINISHED,
        "show_progress": state == "downloading" and progress is not None,
        "updated": stamp(entry.get("updated_at")),
    }


def rollout_view(rollout: dict, names: dict[str, str] | None = None) -> dict:
    names = names or {}
    devices = [
        {**entry_view(d), "name": names.get(d["device_id"], d["device_id"])}
        for d in rollout.get("devices", [])
    ]
    total = len(devices) or sum(rollout["counts"].values())
    canaries = sum(1 for d in devices if d["canary"])
    finished = sum(rollout["counts"].get(s, 0) for s in FINISHED)
    failed = sum(rollout["counts"].get(s, 0) for s in FAILURES)
    return {
        **rollout,
        "devices": devices,
        "total": total,
        "canaries": canaries,
        "expected_canaries": max(1, math.ceil(rollout["canary_fraction"] * total)) if total else 0,
        "finished": finished,
        "failed": failed,
        "label": label(rollout["state"]),
        "words": ROLLOUT_WORDS.get(rollout["state"], ""),
        "running": rollout["state"] in RUNNING,
        "live": rollout["state"] in RUNNING or any(d["state"] in MOVING for d in devices),
        "cancellable": rollout["state"] in CANCELLABLE,
        "counts_text": counts_text(rollout["counts"]),
        "bar": summary_bar(rollout["counts"]),
        "canary_text": percent(rollout["canary_fraction"]),
        "failure_text": percent(rollout["max_failure_ratio"]),
        "created": stamp(rollout.get("created_at")),
        "updated": stamp(rollout.get("updated_at")),
    }


async def device_update(api: Api, device_id: str) -> dict:
    """GET /api/v1/devices/{id}/update for the device page. A server without OTA
    (404 for the route: the device itself was found already) or one whose devices
    service fails here leaves the section saying so; the rest of the page stands."""
    try:
        answer = await api.get(f"/devices/{device_id}/update")
    except ApiError as error:
        if error.status in (404, 405):
            return {"available": False, "reason": "this server does not report update states"}
        return {"available": False, "reason": "; ".join(error.messages())}
    entry = answer.get("rollout")
    view = entry_view(entry) if entry else None
    if view is not None:
        view["rollout_label"] = ROLLOUT_PHRASE.get(entry["rollout_state"], entry["rollout_state"])
        # Still moving: the section refreshes itself (an entry of a halted or cancelled
        # rollout that was downloading finishes too).
        view["moving"] = not view["finished"] and (
            entry["rollout_state"] in RUNNING or entry["state"] != "queued"
        )
    return {
        "available": True,
        "entry": view,
        "running_version": answer.get("running_version"),
        "running_at": stamp(answer.get("running_reported_at")),
    }
