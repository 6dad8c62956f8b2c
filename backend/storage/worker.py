"""The storage worker: queue -> time-series store, acking only after the write.

One thread per worker. A batch is what arrives within `batch_seconds` up to
`batch_size`. When mqtt_auth or the store is down the batch is held (not acked) and
retried with backoff up to 30 s; the worker never dies of an outage. A message that
can never be stored (invalid, unknown device, refused by the store) goes to the dead
letters with its reason, and is counted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

from fieldline_backend.common import metrics
from fieldline_backend.infra.queue import QueueMessage, QueueUnavailable, TelemetryConsumer
from fieldline_backend.infra.timeseries import TimeSeriesRejected, TimeSeriesUnavailable
from fieldline_backend.storage.devices import DirectoryUnavailable
from fieldline_backend.storage.service import Batch, StorageService, received_at

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


@dataclass
class WorkerStats:
    stored_readings: int = 0
    stored_messages: int = 0
    status_changes: int = 0
    duplicates_skipped: int = 0
    dead_letters: int = 0
    dead_letter_reasons: collections.Counter = field(default_factory=collections.Counter)
    retries: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict:
        return {
            "stored_readings": self.stored_readings,
            "stored_messages": self.stored_messages,
            "status_changes": self.status_changes,
            "duplicates_skipped": self.duplicates_skipped,
            "dead_letters": self.dead_letters,
            "dead_letter_reasons": dict(self.dead_letter_reasons.most_common(20)),
            "retries": self.retries,
            "last_error": self.last_error,
        }


class StorageWorker:
    def __init__(
        self,
        consumer_factory,
        service: StorageService,
        batch_size: int = 1000,
        batch_seconds: float = 0.02,
        stats: WorkerStats | None = None,
        name: str = "storage-worker",
    ):
        self.consumer_factory = consumer_factory
        self.service = service
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.stats = stats or WorkerStats()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.consumer: TelemetryConsumer | None = None

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                if self.consumer is None:
                    self.consumer = self.consumer_factory()
                messages = self.consumer.receive(self.batch_size, self.batch_seconds)
                if messages:
                    self._handle(messages)
                backoff = 0.5
            except QueueUnavailable as error:
                self._note(f"queue unavailable: {error}")
                self._drop_consumer()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as error:  # a bug must not silently stop the pipeline
                log.exception("storage worker error; the batch is not acked and comes back")
                self._note(f"unexpected: {error!r}")
                self._drop_consumer()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._drop_consumer()

    def _drop_consumer(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:
                log.debug("closing the consumer failed", exc_info=True)
            self.consumer = None

    def _note(self, error: str) -> None:
        self.stats.last_error = error
        log.warning("storage: %s", error)

    def _handle(self, messages: list[QueueMessage]) -> None:
        metrics.STORAGE_RECEIVED.inc(len(messages))
        metrics.STORAGE_BATCH_MESSAGES.observe(len(messages))
        now_ms = time.time() * 1000  # received_at is the ingestor's wall clock
        for message in messages:
            metrics.STORAGE_WAIT_SECONDS.observe(max(now_ms - received_at(message), 0) / 1000)
        backoff = 0.2
        started = time.monotonic()
        while True:
            try:
                batch = self.service.prepare(messages)
                prepared = time.monotonic()
                metrics.STORAGE_PREPARE_SECONDS.observe(prepared - started)
                self._write(batch)
                metrics.STORAGE_WRITE_SECONDS.observe(time.monotonic() - prepared)
                break
            except (DirectoryUnavailable, TimeSeriesUnavailable) as error:
                self.stats.retries += 1
                metrics.STORAGE_RETRIES.inc()
                self._note(f"{error}; holding {len(messages)} message(s), retry in {backoff:.1f} s")
                if self.stopping.is_set():
                    return  # unacked: handed out again after the restart
                self.consumer.pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        for message, reason in batch.dead:
            self.consumer.dead_letter(message, reason)
            self.stats.dead_letters += 1
            self.stats.dead_letter_reasons[reason.split(":")[0]] += 1
            metrics.STORAGE_DEAD_LETTERS.labels(reason=reason.split(":")[0][:60]).inc()
            log.info("dead letter (%s): %s", message.headers.get("topic"), reason)
        self.consumer.ack(messages)
        if log.isEnabledFor(logging.DEBUG):
            oldest = min(received_at(m) for m in messages)
            log.debug(
                "batch of %d: prepare %.0f ms, write %.0f ms; oldest arrived %.0f ms ago",
                len(messages),
                (prepared - started) * 1000,
                (time.monotonic() - prepared) * 1000,
                time.time() * 1000 - oldest,
            )
        self.stats.stored_messages += len(batch.points_by_message)
        self.stats.stored_readings += len(batch.points)
        self.stats.status_changes += len(batch.statuses) + len(batch.drop_reports)
        self.stats.duplicates_skipped += batch.duplicates
        metrics.STORAGE_STORED_MESSAGES.inc(len(batch.points_by_message))
        metrics.STORAGE_STORED_READINGS.inc(len(batch.points))
        metrics.STORAGE_DUPLICATES.inc(batch.duplicates)
        self.stats.last_error = None

    def _write(self, batch: Batch) -> None:
        for kind, device_id, report, arrival in batch.device_reports:
            self.service.reports.send(kind, device_id, report, arrival)
        store = self.service.store
        for change in batch.statuses:
            store.write_status(change.device_id, change.online, change.ts_ms)
        for device_id, report in batch.drop_reports:
            store.write_drops(device_id, report.boot, report.dropped, report.ts_ms)
        for device_id, ts_ms in batch.rejected:
            store.write_rejected(device_id, ts_ms)
        try:
            store.write(batch.points)
        except TimeSeriesRejected:
            # Find the message(s) the store refuses; write the rest one by one.
            kept = []
            for message, points in batch.points_by_message:
                try:
                    store.write(points)
                    kept.append((message, points))
                except TimeSeriesRejected as error:
                    batch.dead.append((message, f"refused by the store: {error}"))
            batch.points_by_message = kept
