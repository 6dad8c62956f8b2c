"""When to tell people: on a change of level, again per `repeat_every` while firing,
and on recovery when the rule asks. Pure functions over the state of one
(rule, device); the service stores what they decide."""

from __future__ import annotations

from dataclasses import dataclass

NOTIFIABLE = ("info", "warn", "crit")


@dataclass(frozen=True)
class Decision:
    kind: str | None  # alert, recovery, repeat; None = tell nobody
    notified_level: str
    notified_ms: int | None


def decide(rule: dict, notified_level: str, notified_ms: int | None, level: str, now_ms: int):
    """What a newly reported level means, given what people were last told."""
    if level == notified_level:
        if repeat_due(rule, notified_level, notified_ms, now_ms):
            return Decision("repeat", level, now_ms)
        return Decision(None, notified_level, notified_ms)
    if level in NOTIFIABLE:
        return Decision("alert", level, now_ms)
    # Back to ok from a notified level.
    if notified_level in NOTIFIABLE and rule.get("notify_on_recovery", True):
        return Decision("recovery", "ok", now_ms)
    return Decision(None, "ok", now_ms)


def repeat_due(rule: dict, notified_level: str, notified_ms: int | None, now_ms: int) -> bool:
    every = rule.get("repeat_every_s")
    if not every or notified_level not in NOTIFIABLE or notified_ms is None:
        return False
    return now_ms - notified_ms >= every * 1000


def simulate(rule: dict, changes: list[tuple[int, str, float]], end_ms: int) -> list[dict]:
    """The notifications a rule would have sent for a series of level changes
    (monitor.evaluation.replay), including repeats up to end_ms. For the preview."""
    sent: list[dict] = []
    notified, notified_ms = "ok", None
    every = rule.get("repeat_every_s")

    def repeats_until(limit_ms: int) -> None:
        nonlocal notified_ms
        if not every or notified not in NOTIFIABLE or notified_ms is None:
            return
        while notified_ms + every * 1000 <= limit_ms and len(sent) < 10000:
            notified_ms += int(every * 1000)
            sent.append({"ts": notified_ms, "kind": "repeat", "level": notified, "value": None})

    for ts, level, value in changes:
        repeats_until(ts)
        decision = decide(rule, notified, notified_ms, level, ts)
        if decision.kind:
            sent.append({"ts": ts, "kind": decision.kind, "level": level, "value": value})
        notified, notified_ms = decision.notified_level, decision.notified_ms
    repeats_until(end_ms)
    return sent
