"""`fieldline simulate --rollout BUNDLE`: an OTA rollout to the run's virtual devices while
they send (docs/ota.md): the bundle is uploaded, a rollout with a canary started, its
progress shown, and its outcome and duration printed. Readings keep flowing through it;
the read-back at the end of the run says whether any was lost."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from fieldline_backend.simulator.api import ProvisionError, SimulatorApi

POLL_S = 1.0
ENDED = ("completed", "halted", "cancelled")


@dataclass(frozen=True)
class RolloutPlan:
    bundle: Path
    canary_fraction: float
    max_failure_ratio: float
    timeout_s: float


@dataclass
class RolloutOutcome:
    id: str
    state: str
    seconds: float
    counts: dict
    halted_reason: str | None

    def line(self) -> str:
        counts = "  ".join(f"{state} {n}" for state, n in sorted(self.counts.items()) if n)
        why = f" ({self.halted_reason})" if self.halted_reason else ""
        return f"rollout {self.id}: {self.state}{why} after {self.seconds:.1f} s: {counts}"


def read_bundle_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ProvisionError(
            f"cannot read the bundle {path}: {error.strerror}; "
            "build one with `fieldline bundle -o bundle.tar`"
        ) from None


async def run_rollout(
    api: SimulatorApi, plan: RolloutPlan, device_ids: list[str], live
) -> RolloutOutcome:
    """Upload, start, follow until it ends or plan.timeout_s passes; `live(text)` shows
    progress."""
    data = read_bundle_file(plan.bundle)
    bundle = await asyncio.to_thread(api.upload_bundle, data)
    started = time.monotonic()
    rollout = await asyncio.to_thread(
        api.create_rollout,
        {
            "bundle_id": bundle["id"],
            "devices": device_ids,
            "canary_fraction": plan.canary_fraction,
            "max_failure_ratio": plan.max_failure_ratio,
        },
    )
    while rollout["state"] not in ENDED and time.monotonic() - started < plan.timeout_s:
        live(_progress(rollout))
        await asyncio.sleep(POLL_S)
        rollout = await asyncio.to_thread(api.rollout, rollout["id"])
    return RolloutOutcome(
        rollout["id"],
        rollout["state"],
        time.monotonic() - started,
        rollout["counts"],
        rollout.get("halted_reason"),
    )


def _progress(rollout: dict) -> str:
    counts = " ".join(f"{state} {n}" for state, n in sorted(rollout["counts"].items()) if n)
    return f"rollout {rollout['id']} {rollout['state']}: {counts}"
