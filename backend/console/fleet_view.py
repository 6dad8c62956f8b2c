"""What the device page shows of fleet management (docs/fleet.md): the desired config
beside what the device reported (and whether it is still pending), the last commands,
and its update state (docs/ota.md, rollout_view)."""

from __future__ import annotations

import asyncio
import json

from fieldline_backend.console.api import Api
from fieldline_backend.console.charts import stamp
from fieldline_backend.console.rollout_view import device_update

COMMANDS_SHOWN = 10


def pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


async def fleet_view(api: Api, device_id: str) -> dict:
    config, commands, update = await asyncio.gather(
        api.get(f"/devices/{device_id}/config"),
        api.get(f"/devices/{device_id}/commands", limit=COMMANDS_SHOWN),
        device_update(api, device_id),
    )
    desired, reported = config["desired"], config["reported"]
    if desired is None:
        state = "none"
    elif config["pending"]:
        state = "pending"
    else:
        state = reported["status"]  # applied or rejected
    return {
        "state": state,
        "desired": desired,
        "desired_text": pretty(desired["config"]) if desired else "",
        "reported": reported,
        "reported_at": stamp(reported["at"]) if reported else "",
        "commands": [
            {**command, "sent": stamp(command["created_at"]), "outcome": _outcome(command)}
            for command in commands
        ],
        "ota": update,
    }


def _outcome(command: dict) -> str:
    if command["status"] == "succeeded":
        return json.dumps(command["result"], sort_keys=True)[:200]
    if command["status"] == "failed":
        return command["error"] or ""
    return ""
