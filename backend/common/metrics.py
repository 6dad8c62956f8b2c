"""Prometheus metrics: what each service counts, and the `/metrics` route.

One process-wide registry (prometheus_client's default). The metric objects are plain
counters in memory (no I/O), so defining them at import is harmless; the services call
`.inc()`/`.observe()` where the work happens. The queue depth is read at scrape time
(a passive declare on a connection of its own), not kept up to date in between.

Names follow Prometheus conventions: `fieldline_<service>_<what>_<unit>`; counters end
in `_total`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

# ---- ingestor ---------------------------------------------------------------------------
INGESTOR_RECEIVED = Counter(
    "fieldline_ingestor_messages_in_total",
    "MQTT messages the ingestor received from the broker",
)
INGESTOR_CONFIRMED = Counter(
    "fieldline_ingestor_messages_out_total",
    "Messages the queue confirmed (their MQTT PUBACK was sent)",
)
INGESTOR_IGNORED = Counter(
    "fieldline_ingestor_messages_ignored_total",
    "MQTT messages on topics the ingestor does not forward (acked and dropped)",
)

# The hops of a reading's way to the store (docs/pipeline.md, bench/ingest.py prints them).
HOP_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1, 2.5, 5, 10,
)  # fmt: skip
INGESTOR_CONFIRM_SECONDS = Histogram(
    "fieldline_ingestor_confirm_seconds",
    "From a message's arrival at the ingestor to the queue's confirm (then its PUBACK)",
    buckets=HOP_BUCKETS,
)

INGESTOR_UNKNOWN_TOPIC = Counter(
    "fieldline_ingestor_unknown_topic_total",
    "Messages on a device's topic that is none of telemetry, status, status/buffer "
    "(sent on to telemetry.dead with reason 'unknown topic')",
)

# ---- embedded broker (Mosquitto logs its own) ---------------------------------------
BROKER_REFUSED = Counter(
    "fieldline_broker_refused_total",
    "Connections the embedded broker closed or refused, by reason "
    "(max_connections, connect_timeout, packet_too_large, will_not_allowed)",
    ["reason"],
)
BROKER_CONNECTIONS = Gauge(
    "fieldline_broker_connections", "TCP connections open on the embedded broker"
)

# ---- storage ----------------------------------------------------------------------------
STORAGE_RECEIVED = Counter(
    "fieldline_storage_messages_in_total", "Messages storage took from the queue"
)
STORAGE_STORED_MESSAGES = Counter(
    "fieldline_storage_messages_out_total", "Messages written to the time-series store and acked"
)
STORAGE_STORED_READINGS = Counter(
    "fieldline_storage_readings_stored_total", "Readings (points) written to the store"
)
STORAGE_DEAD_LETTERS = Counter(
    "fieldline_storage_dead_letters_total",
    "Messages moved to telemetry.dead, by reason",
    ["reason"],
)
STORAGE_DUPLICATES = Counter(
    "fieldline_storage_duplicates_skipped_total",
    "Readings without ts skipped because their (boot, seq) was stored already",
)
STORAGE_RETRIES = Counter(
    "fieldline_storage_write_retries_total",
    "Batches held and retried because the store or mqtt_auth was unreachable",
)
STORAGE_BATCH_MESSAGES = Histogram(
    "fieldline_storage_batch_messages",
    "Messages per storage batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000),
)
STORAGE_WAIT_SECONDS = Histogram(
    "fieldline_storage_wait_seconds",
    "From a message's arrival at the ingestor (its received_at stamp) to its batch "
    "reaching the storage worker: the queue's confirm, the queue, the batch window",
    buckets=HOP_BUCKETS,
)
STORAGE_PREPARE_SECONDS = Histogram(
    "fieldline_storage_prepare_seconds",
    "Time to check and convert one batch (payloads, device directory, duplicates)",
    buckets=HOP_BUCKETS,
)
STORAGE_WRITE_SECONDS = Histogram(
    "fieldline_storage_write_seconds",
    "Time to write one batch to the time-series store",
    buckets=HOP_BUCKETS,
)

# ---- monitor and alerts -------------------------------------------------------------
MONITOR_CYCLE_SECONDS = Histogram(
    "fieldline_monitor_cycle_seconds",
    "Duration of one monitor cycle (all rules evaluated)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
MONITOR_CYCLE_FAILURES = Counter(
    "fieldline_monitor_cycle_failures_total", "Monitor cycles that failed or reported errors"
)
MONITOR_POSTED = Counter(
    "fieldline_monitor_notifications_posted_total", "Levels the monitor posted to alerts"
)
ALERTS_SENT = Counter(
    "fieldline_alerts_sent_total",
    "Notifications delivered (the mail server or webhook accepted them), by channel",
    ["channel"],
)
ALERTS_FAILURES = Counter(
    "fieldline_alerts_delivery_failures_total",
    "Failed delivery attempts, by channel and outcome (retry = will try again, "
    "failed = given up or refused for good); channel 'mail' are the mail failures",
    ["channel", "outcome"],
)


def channel_label(channel: str | None) -> str:
    return "webhook" if channel == "webhook" else "mail"


# ---- queue depth, read at scrape time -------------------------------------------------


class QueueDepthCollector:
    """`fieldline_queue_messages{queue=...}`: messages waiting in telemetry.storage and
    telemetry.dead, asked from the queue port's probe (infra.queue.QueueProbe). A failed
    read yields no sample (and a log line), never a failed scrape."""

    def __init__(self, probe, queues: tuple[str, ...]):
        self.probe = probe  # infra.queue.QueueProbe
        self.queues = queues

    def describe(self):
        return []  # unchecked collector: the queue may be away when it is registered

    def collect(self):
        family = GaugeMetricFamily(
            "fieldline_queue_messages", "Messages waiting in the queue", labels=["queue"]
        )
        try:
            for queue in self.queues:
                family.add_metric([queue], self.probe.depth(queue))
        except Exception as error:  # the queue being down must not break /metrics
            log.info("queue depth not available: %s", error)
        yield family


_queue_collector: QueueDepthCollector | None = None


def watch_queue_depth(
    probe, queues: tuple[str, ...], registry: CollectorRegistry = REGISTRY
) -> None:
    """Report the queue depth from this process (once per process; the last one wins)."""
    global _queue_collector
    if _queue_collector is None:
        _queue_collector = QueueDepthCollector(probe, queues)
        registry.register(_queue_collector)
    else:
        _queue_collector.probe, _queue_collector.queues = probe, queues


PROCESS_SERVICES = Gauge(
    "fieldline_service_info", "The services this process runs (value 1)", ["service"]
)

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
def metrics(_request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
