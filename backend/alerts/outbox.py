"""Delivers the outbox: every pending message to its mail server or webhook, retried
with exponential backoff while the other side is down, recorded as failed when it
refuses for good (or after the last attempt).

A message is marked sent right after the server took it. A crash between the two
leaves it pending, so it goes out again after its lease: at least once, never lost.
Its Message-ID stays the same, so that rare repeat shows as one mail in most readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import httpx

from fieldline_backend.alerts.messages import email_for
from fieldline_backend.alerts.store import OutboxStore, now_ms
from fieldline_backend.common import metrics
from fieldline_backend.common.db import Database
from fieldline_backend.infra.mail import Mailer, MailPermanentError, MailTemporaryError

log = logging.getLogger(__name__)

LEASE_MS = 120_000  # longer than any one delivery attempt may take


class Outbox:
    def __init__(
        self,
        database: Database,
        mailer: Mailer,
        sender: str,
        reply_to: str | None = None,
        retry_base: float = 2.0,
        retry_max: float = 300.0,
        max_attempts: int = 60,
        http: httpx.AsyncClient | None = None,
    ):
        self.database = database
        self.mailer = mailer
        self.sender = sender
        self.reply_to = reply_to
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.http = http or httpx.AsyncClient(timeout=15)
        self.wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def backoff_s(self, attempts: int) -> float:
        delay = min(self.retry_base * 2 ** max(attempts - 1, 0), self.retry_max)
        return delay * random.uniform(0.8, 1.2)

    def notify(self) -> None:
        """New messages are waiting (thread-safe: the API runs in worker threads)."""
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.call_soon_threadsafe(self.wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="alerts-outbox")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
                wait_s = await asyncio.to_thread(self._seconds_to_next)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: delivery round failed; retrying in 5 s")
                wait_s = 5.0
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=wait_s)

    def _seconds_to_next(self) -> float:
        with self.database.session() as session:
            due = OutboxStore(session).next_due_ms()
        if due is None:
            return 5.0
        return min(max((due - now_ms()) / 1000, 0.05), 5.0)

    def _claim(self) -> list[dict]:
        with self.database.session() as session:
            rows = OutboxStore(session).claim_due(now_ms(), LEASE_MS)
            return [
                {
                    "id": r.id,
                    "alert_id": r.alert_id,
                    "channel": r.channel,
                    "recipient": r.recipient,
                    "attempts": r.attempts,
                    "message": r.message,
                }
                for r in rows
            ]

    async def deliver_due(self) -> int:
        """One round: deliver every due message. Returns how many went out."""
        delivered = 0
        while True:
            batch = await asyncio.to_thread(self._claim)
            if not batch:
                return delivered
            results = await asyncio.gather(*(self._deliver(item) for item in batch))
            delivered += sum(results)

    async def _deliver(self, item: dict) -> bool:
        try:
            if item["channel"] == "webhook":
                await self._post_webhook(item)
            else:
                msg_id = f"<fieldline-alert-{item['alert_id']}-{item['id']}@fieldline>"
                mail = email_for(
                    item["message"], item["recipient"], self.sender, self.reply_to, msg_id
                )
                await self.mailer.send(mail)
        except MailPermanentError as error:
            metrics.ALERTS_FAILURES.labels(metrics.channel_label(item["channel"]), "failed").inc()
            await asyncio.to_thread(self._finish, item, "failed", str(error))
            log.warning("outbox: message %s refused for good: %s", item["id"], error)
            return False
        except (MailTemporaryError, httpx.HTTPError, OSError) as error:
            text = f"{type(error).__name__}: {error}"
            gave_up = item["attempts"] >= self.max_attempts
            outcome = "failed" if gave_up else "retry"
            metrics.ALERTS_FAILURES.labels(metrics.channel_label(item["channel"]), outcome).inc()
            if gave_up:
                await asyncio.to_thread(
                    self._finish, item, "failed", f"gave up after {item['attempts']}: {text}"
                )
            else:
                delay = self.backoff_s(item["attempts"])
                await asyncio.to_thread(self._later, item, delay, text)
                log.info(
                    "outbox: message %s not delivered (%s); retry in %.1f s",
                    item["id"],
                    text,
                    delay,
                )
            return False
        await asyncio.to_thread(self._finish, item, "sent", None)
        metrics.ALERTS_SENT.labels(metrics.channel_label(item["channel"])).inc()
        return True

    async def _post_webhook(self, item: dict) -> None:
        response = await self.http.post(item["recipient"], json=item["message"]["json"])
        if response.is_success:
            return
        text = f"webhook answered {response.status_code}"
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise MailTemporaryError(text)
        raise MailPermanentError(text)

    def _finish(self, item: dict, status: str, error: str | None) -> None:
        with self.database.session() as session:
            store = OutboxStore(session)
            if status == "sent":
                store.mark_sent(item["id"], now_ms())
            else:
                store.mark_failed(item["id"], error or "failed")

    def _later(self, item: dict, delay_s: float, error: str) -> None:
        with self.database.session() as session:
            OutboxStore(session).retry_later(item["id"], now_ms() + int(delay_s * 1000), error)
