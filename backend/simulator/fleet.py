"""Many virtual devices on one event loop: start, count, drain, stop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fieldline_backend.simulator.virtual import VirtualDevice


@dataclass(frozen=True)
class Totals:
    sent: int
    acknowledged: int
    buffered: int
    reconnects: int
    dropped: int
    online: int
    devices: int

    def line(self) -> str:
        return (
            f"sent {self.sent}  acknowledged {self.acknowledged}  buffered {self.buffered}  "
            f"reconnects {self.reconnects}  online {self.online}/{self.devices}"
            + (f"  dropped {self.dropped}" if self.dropped else "")
        )


class Fleet:
    def __init__(self, devices: list[VirtualDevice]) -> None:
        self.devices = devices

    def start(self) -> None:
        for device in self.devices:
            device.start()

    def totals(self) -> Totals:
        buffered = sum(device.buffered for device in self.devices)  # updates acknowledged
        return Totals(
            sent=sum(d.sent for d in self.devices),
            acknowledged=sum(d.acknowledged for d in self.devices),
            buffered=buffered,
            reconnects=sum(d.reconnects for d in self.devices),
            dropped=sum(d.dropped for d in self.devices),
            online=sum(1 for d in self.devices if d.sdk.state == "online"),
            devices=len(self.devices),
        )

    async def drain(self, timeout: float) -> bool:
        """Wait until every sent reading is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.totals().buffered or any(d.busy for d in self.devices):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def stop(self, timeout: float = 2.0) -> None:
        await asyncio.gather(*(device.stop(timeout) for device in self.devices))
