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


class OwnedDevices:
    """An owner's devices indexed by id and by tag, so that a thousand rules select
    theirs without a thousand passes over the list."""

    def __init__(self, devices: list[WatchedDevice]):
        self.devices = devices
        self.by_id = {d.id: d for d in devices}
        self.by_tag: dict[tuple[str, str], list[WatchedDevice]] = {}
        for device in devices:
            for key, value in device.metadata.items():
                self.by_tag.setdefault((key, tag_text(value)), []).append(device)

    def select(self, rule: dict) -> list[WatchedDevice]:
        if rule.get("device_id"):
            found = self.by_id.get(rule["device_id"])
            return [found] if found else []
        selector = rule.get("selector") or {}
        if not selector:
            return []
        lists = sorted((self.by_tag.get(item, []) for item in selector.items()), key=len)
        if len(lists) == 1:
            return list(lists[0])
        others = [{d.id for d in more} for more in lists[1:]]
        return [d for d in lists[0] if all(d.id in ids for ids in others)]
