"""A rollout's rules alone (backend/devices/rollout_rules.py, docs/ota.md): how many
canaries, when a rollout moves on, halts or completes, which offers it withdraws."""

from __future__ import annotations

import pytest

from fieldline_backend.devices.rollout_rules import (
    EntryView,
    canary_count,
    has_offer,
    next_step,
    pick_canaries,
)


@pytest.mark.parametrize(
    ("fraction", "devices", "expected"),
    [(0.0, 10, 1), (0.1, 10, 1), (0.11, 10, 2), (0.25, 4, 1), (0.5, 3, 2), (1.0, 7, 7)],
)
def test_canaries_are_ceil_of_the_fraction_and_at_least_one(fraction, devices, expected):
    assert canary_count(fraction, devices) == expected
    ids = [f"dev-{i}" for i in range(devices)]
    assert len(pick_canaries(ids, fraction)) == expected


def entries(*spec: str) -> list[EntryView]:
    """ "c:confirmed" is a canary, "queued" is not."""
    return [
        EntryView(f"d{i}", s.startswith("c:"), s.removeprefix("c:")) for i, s in enumerate(spec)
    ]


def test_canary_stage_waits_for_every_canary():
    assert next_step("canary", 0.2, entries("c:confirmed", "c:downloading", "queued")) is None


def test_canary_stage_moves_on_to_the_queued_devices():
    step = next_step("canary", 0.5, entries("c:confirmed", "c:failed", "queued", "queued"))
    assert step.state == "rolling" and step.offer == ["d2", "d3"] and step.withdraw == []


def test_canary_stage_halts_past_the_ratio_and_offers_nothing():
    step = next_step("canary", 0.2, entries("c:confirmed", "c:rolled_back", "queued"))
    assert step.state == "halted" and step.offer == [] and "1 of 2" in step.reason


def test_all_canaries_is_completed_at_once():
    assert next_step("canary", 0.0, entries("c:confirmed", "c:confirmed")).state == "completed"


def test_rolling_halts_at_any_time_and_withdraws_untaken_offers():
    spec = ("c:confirmed", "failed", "downloading", "offered", "offered")
    step = next_step("rolling", 0.3, entries(*spec))
    assert step.state == "halted" and step.withdraw == ["d3", "d4"]


def test_rolling_completes_when_every_device_finished():
    assert next_step("rolling", 0.5, entries("c:confirmed", "offered")) is None
    step = next_step("rolling", 0.5, entries("c:confirmed", "failed", "confirmed"))
    assert step.state == "completed"


@pytest.mark.parametrize("state", ["completed", "halted", "cancelled"])
def test_a_finished_rollout_stays(state):
    assert next_step(state, 0.0, entries("c:failed", "queued")) is None


def test_who_holds_an_offer():
    assert has_offer("canary", "offered") and has_offer("rolling", "staged")
    assert has_offer("halted", "downloading") and has_offer("cancelled", "rebooting")
    assert not has_offer("halted", "offered") and not has_offer("rolling", "queued")
    assert not has_offer("rolling", "confirmed")
