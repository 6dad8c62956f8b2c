"""The level of one value under a threshold rule, with hysteresis. Pure functions.

A value crosses into a worse level at the threshold; it leaves a level only once it is
back past that level's threshold by the hysteresis margin (the distance from the top
threshold to `clear`), so a value hovering at a limit does not flap.
"""

from __future__ import annotations

RANK = {"ok": 0, "info": 1, "warn": 2, "crit": 3}
FIRING = ("warn", "crit")


def _breaches(condition: str, threshold, value: float, margin=(0.0, 0.0)) -> bool:
    """Whether value is on the bad side of threshold widened by margin (the sticky side)."""
    low_margin, high_margin = margin
    if condition == "above":
        return value > threshold - high_margin
    if condition == "below":
        return value < threshold + low_margin
    low, high = threshold
    if condition == "outside":
        return value < low + low_margin or value > high - high_margin
    # inside: a margin widens the bad range.
    return low - low_margin < value < high + high_margin


def margins(rule: dict) -> tuple[float, float]:
    """(low side, high side) hysteresis margins from the rule's clear threshold."""
    clear = rule.get("clear")
    if clear is None:
        return 0.0, 0.0
    top = rule["crit"] if rule.get("crit") is not None else rule["warn"]
    condition = rule["condition"]
    if condition == "above":
        return 0.0, top - clear
    if condition == "below":
        return clear - top, 0.0
    if condition == "outside":
        return clear[0] - top[0], top[1] - clear[1]
    return top[0] - clear[0], clear[1] - top[1]


def raw_level(rule: dict, value: float, margin=(0.0, 0.0)) -> str:
    for level in ("crit", "warn"):
        threshold = rule.get(level)
        if threshold is not None and _breaches(rule["condition"], threshold, value, margin):
            return level
    return "ok"


def next_level(rule: dict, value, current: str) -> str:
    """The level after seeing value, given the level before it (hysteresis applied)."""
    value = float(value)
    raw = raw_level(rule, value)
    if RANK[raw] >= RANK[current]:
        return raw
    sticky = raw_level(rule, value, margins(rule))
    held = current if RANK[sticky] >= RANK[current] else sticky
    return held if RANK[held] > RANK[raw] else raw


def threshold_of(rule: dict, level: str):
    return rule.get(level) if level in FIRING else None
