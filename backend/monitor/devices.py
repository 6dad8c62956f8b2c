"""Which devices a rule watches, always among its owner's own devices.

One call to the registry per owner per cycle (not one per rule): the owner's device
list, matched against each rule's selector here, the way the registry matches tags
(as text: true/false, 21.5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatchedDevice:
    id: str
    name: str
    metadata: dict


def tag_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select_devices(rule: dict, owned: list[WatchedDevice]) -> list[WatchedDevice]:
    if rule.get("device_id"):
        return [d for d in owned if d.id == rule["device_id"]]
    selector = rule.get("selector") or {}
    return [
        d
        for d in owned
        if all(key in d.metadata and tag_text(d.metadata[key]) == text
               for key, text in selector.items())
    ]  # fmt: skip
