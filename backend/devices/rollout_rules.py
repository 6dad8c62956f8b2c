"""A rollout's rules (docs/ota.md), pure: which devices are canaries, and what a rollout
does next given where each of its devices is. No I/O: the repository applies the step
in the transaction that changed a device's entry, the engine publishes after it.

- canary: only ceil(canary_fraction * n) devices (at least 1) are offered the bundle;
  when every canary finished (confirmed, rolled back or failed) the rollout halts if
  failures / finished > max_failure_ratio, else the rest are offered (rolling).
- rolling: halts as soon as failures / finished passes the ratio (the offers not yet
  taken are withdrawn, the queued devices never offered); completed when every
  device finished.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from fieldline_backend.devices.ota_schemas import FAILURES, TERMINAL


@dataclass(frozen=True)
class EntryView:
    device_id: str
    canary: bool
    state: str


@dataclass
class Step:
    state: str  # the rollout's new state
    offer: list[str] = field(default_factory=list)  # queued devices to offer now
    withdraw: list[str] = field(default_factory=list)  # offers not taken yet, to clear
    reason: str | None = None


def canary_count(fraction: float, devices: int) -> int:
    return min(devices, max(1, math.ceil(fraction * devices)))


def pick_canaries(devices: Sequence[str], fraction: float) -> set[str]:
    """A random sample: the devices listed first are not always the ones at risk."""
    return set(random.SystemRandom().sample(list(devices), canary_count(fraction, len(devices))))


def _failing(entries: Sequence[EntryView], max_failure_ratio: float) -> str | None:
    finished = [e for e in entries if e.state in TERMINAL]
    failures = sum(e.state in FAILURES for e in finished)
    if not finished or failures / len(finished) <= max_failure_ratio:
        return None
    return (
        f"{failures} of {len(finished)} finished devices failed or rolled back "
        f"({failures / len(finished):.0%}), above max_failure_ratio {max_failure_ratio:g}"
    )


def next_step(state: str, max_failure_ratio: float, entries: Sequence[EntryView]) -> Step | None:
    """What the rollout does now, or None when it stays as it is."""
    if state == "canary":
        if not all(e.state in TERMINAL for e in entries if e.canary):
            return None
        reason = _failing(entries, max_failure_ratio)
        if reason:
            return Step("halted", reason=reason)
        queued = [e.device_id for e in entries if e.state == "queued"]
        return Step("rolling", offer=queued) if queued else Step("completed")
    if state == "rolling":
        reason = _failing(entries, max_failure_ratio)
        if reason:
            return Step("halted", withdraw=untaken(entries), reason=reason)
        if all(e.state in TERMINAL for e in entries):
            return Step("completed")
    return None


def untaken(entries: Sequence[EntryView]) -> list[str]:
    """Devices offered the bundle that have not started to download it."""
    return [e.device_id for e in entries if e.state == "offered"]


def has_offer(rollout_state: str, entry_state: str) -> bool:
    """Does the device hold this rollout's offer (retained, and served chunks)? Offered
    devices while the rollout runs; a device already downloading keeps it to the end,
    whatever happened to the rollout meanwhile."""
    if entry_state in ("downloading", "staged", "rebooting"):
        return True
    return entry_state == "offered" and rollout_state in ("canary", "rolling")
