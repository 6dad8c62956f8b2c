"""What a service contributes to a process: HTTP routes and background work.

Each service package has `component.py` with `build(ctx, adapters) -> Component`
(common/context.py, infra/adapters.py); the composition root (fieldline_backend.app)
decides which run in this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter


@dataclass
class Component:
    name: str
    routers: list[APIRouter] = field(default_factory=list)

    async def start(self) -> None:
        """Start background work (consumers, schedulers). Called after migrations."""

    async def stop(self) -> None:
        """Stop background work; must leave nothing half-done that was acknowledged."""

    async def ready(self) -> dict[str, bool]:
        """Reachability of this service's dependencies, for /readyz."""
        return {}
