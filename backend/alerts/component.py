"""The alerts service in a process: its internal API, the outbox worker and the timer
that repeats alerts still firing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import text

from fieldline_backend.alerts.api import EXTRAS_KEY, router
from fieldline_backend.alerts.outbox import Outbox
from fieldline_backend.alerts.service import AlertService
from fieldline_backend.common.component import Component
from fieldline_backend.infra.adapters import Adapters

log = logging.getLogger(__name__)

REPEAT_CHECK_S = 1.0


@dataclass
class AlertsComponent(Component):
    service: AlertService | None = None
    outbox: Outbox | None = None
    _tasks: list = field(default_factory=list)

    async def start(self) -> None:
        await self.outbox.start()
        self._tasks.append(asyncio.create_task(self._repeat_loop(), name="alerts-repeats"))
        log.info("alerts: mail goes to %s", self.outbox.mailer.describe())

    async def _repeat_loop(self) -> None:
        while True:
            await asyncio.sleep(REPEAT_CHECK_S)
            try:
                await asyncio.to_thread(self.service.send_repeats)
            except Exception:
                log.exception("alerts: repeat check failed; trying again shortly")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.outbox.stop()

    async def ready(self) -> dict[str, bool]:
        def database_ok() -> bool:
            try:
                with self.service.database.session() as session:
                    session.execute(text("select 1"))
                return True
            except Exception:
                return False

        return {"database": await asyncio.to_thread(database_ok)}


def build(ctx, adapters: Adapters) -> Component:
    settings = ctx.settings
    outbox = Outbox(
        ctx.database,
        adapters.open_mailer(),
        sender=settings.mail_from,
        reply_to=settings.mail_reply_to,
        retry_base=settings.alerts_retry_base,
        retry_max=settings.alerts_retry_max,
        max_attempts=settings.alerts_max_attempts,
    )
    service = AlertService(
        ctx.database, settings.public_url or settings.http_base_url, on_enqueued=outbox.notify
    )
    ctx.extras[EXTRAS_KEY] = service
    return AlertsComponent(name="alerts", routers=[router], service=service, outbox=outbox)
