"""How wide an aggregation window a chart of N points needs: shared by the console's
charts and the fleet overview's sparklines (the gateway asks storage for them)."""

from __future__ import annotations

import math


def window_ms(start_ms: int, stop_ms: int, width_px: int) -> int:
    """The aggregation window for a chart of width_px over [start_ms, stop_ms): whole
    seconds, at least 1 s. Windows are aligned to the epoch, so a range of length L
    touches at most floor(L / every) + 1 of them; every >= L / (width - 1) keeps that
    at most width_px."""
    span = max(stop_ms - start_ms, 1)
    every = math.ceil(span / max(width_px - 1, 1))
    return max(1000, math.ceil(every / 1000) * 1000)
