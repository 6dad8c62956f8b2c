"""Replicas and the arrival stamp: each ingestor's stamps increase per device within its
own process only, so two ingestor replicas can give two different readings of one
device (no `ts`) the same millisecond. Written as they are, the second replaces the
first (same series key): a reading lost. Storage moves such a reading to the next free
millisecond; a redelivery of the same (boot, seq) is still dropped. Two workers placing
such readings at once (neither sees the other's write) keep both on InfluxDB, where
each sits at its own microsecond. Runs against the real SQLite series store and the
real InfluxDB."""

from __future__ import annotations

import json
import secrets

from fieldline_backend.infra.queue import QueueMessage
from fieldline_backend.infra.timeseries.influx import InfluxStore
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore
from fieldline_backend.storage.devices import DeviceInfo
from fieldline_backend.storage.service import StorageService
from tests.pipeline.support import influx_statement


class OneDevice:
    """The device directory's lookup for one known device (mqtt_auth is not the subject)."""

    def lookup(self, client_id: str) -> DeviceInfo | None:
        return DeviceInfo(device_id=client_id, owner_id="owner-c") if client_id == "dev-c" else None


def message(seq: int, received_at: int) -> QueueMessage:
    body = json.dumps({"seq": seq, "boot": 1, "values": {"t": float(seq)}}).encode()
    headers = {"client_id": "dev-c", "topic": "devices/dev-c/telemetry", "received_at": received_at}
    return QueueMessage(body, headers, tag=seq)


def store_batch(service: StorageService, messages: list[QueueMessage]) -> None:
    batch = service.prepare(messages)
    service.store.write(batch.points)


def test_two_replicas_stamping_the_same_millisecond_keep_both_readings(tmp_path):
    store = SQLiteStore(tmp_path / "series.db")
    store.ensure_schema()
    service = StorageService(OneDevice(), store, redelivery_window_ms=3_600_000)
    now = 1_800_000_000_000
    # Replica A stamped seq 1 and 2 at `now` and `now + 1`; replica B stamped seq 3 at
    # `now` too. Separate batches (two workers, one after the other), then one batch.
    store_batch(service, [message(1, now), message(2, now + 1)])
    store_batch(service, [message(3, now)])
    store_batch(service, [message(4, now + 1), message(5, now + 1)])
    # A queue redelivery of seq 3 (same stamp) and an MQTT one (new stamp): dropped.
    store_batch(service, [message(3, now), message(3, now + 7)])
    marks = store.marks("dev-c", 0, 2**53)
    assert sorted(m.seq for m in marks) == [1, 2, 3, 4, 5]
    assert len({m.ts_ms for m in marks}) == 5
    assert all(now <= m.ts_ms < now + 10 for m in marks)
    store.close()


def test_two_workers_placing_the_same_millisecond_at_once_keep_both_readings(influx_url):
    """The race the CI run of stop 23 lost a reading to (3 ingestors, 3 storage workers,
    an ingestor SIGKILLed: its redelivered burst stamped alike with live readings): both
    workers ask the store before either writes, both see the ms free."""
    database = f"fltest_{secrets.token_hex(6)}"
    store = InfluxStore(influx_url, database)
    store.ensure_schema()
    try:
        workers = [StorageService(OneDevice(), store, redelivery_window_ms=3_600_000)]
        workers.append(StorageService(OneDevice(), store, redelivery_window_ms=3_600_000))
        now = 1_800_000_000_000
        first = workers[0].prepare([message(1, now), message(2, now + 1)])
        second = workers[1].prepare([message(3, now), message(4, now + 1)])
        store.write(first.points)
        store.write(second.points)
        # A later queue redelivery of seq 3 (same stamp): dropped, not a fifth reading.
        store.write(workers[0].prepare([message(3, now)]).points)
        marks = store.marks("dev-c", 0, 2**53)
        assert sorted(m.seq for m in marks) == [1, 2, 3, 4]
        assert sorted(m.ts_ms for m in marks) == [now, now, now + 1, now + 1]
    finally:
        store.close()
        influx_statement(influx_url, f'DROP DATABASE "{database}"')
