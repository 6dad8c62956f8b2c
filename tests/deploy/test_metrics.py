"""Prometheus /metrics: the counters move with real traffic. Readings go from a device
through the real Mosquitto, ingestor, RabbitMQ and storage into InfluxDB; an alert test
notification goes through the real outbox to an SMTP server that takes one recipient
and refuses the other. Every number is a difference before/after (one registry per
process, shared by the tests that ran before)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pipeline.support import reading
from tests.support.servers import wait_for

pytestmark = pytest.mark.real


def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("pipeline_kind", ["real"])
def test_pipeline_counters_move_with_readings(start_pipeline):
    with start_pipeline() as pipeline:
        base = pipeline.running.base_url
        before = scrape(base)
        device = pipeline.account("owner-m", "metered")
        count = 120
        device.publish_all([reading(seq, ts=1_764_000_000_000 + seq) for seq in range(count)])
        pipeline.wait_stored({device.device_id: count}, timeout=60)
        wait_for(
            lambda: (
                value(scrape(base), "fieldline_storage_readings_stored_total")
                - value(before, "fieldline_storage_readings_stored_total")
                >= count
            ),
            10,
            "the stored-readings counter to catch up",
        )
        after = scrape(base)
        device.close()

    def moved(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("fieldline_ingestor_messages_in_total") >= count
    assert moved("fieldline_ingestor_messages_out_total") >= count
    assert moved("fieldline_storage_messages_in_total") >= count
    assert moved("fieldline_storage_messages_out_total") >= count
    assert moved("fieldline_storage_readings_stored_total") >= count
    batches = moved("fieldline_storage_batch_messages_count")
    assert 1 <= batches <= count
    assert moved("fieldline_storage_batch_messages_sum") >= count
    assert moved("fieldline_storage_write_seconds_count") >= 1
    assert moved("fieldline_storage_write_seconds_sum") > 0
    # the hops: one observation per message, one per batch
    assert moved("fieldline_ingestor_confirm_seconds_count") >= count
    assert moved("fieldline_storage_wait_seconds_count") >= count
    assert 0 < moved("fieldline_storage_wait_seconds_sum") < count * 10
    assert moved("fieldline_storage_prepare_seconds_count") == batches
    # Read from RabbitMQ at scrape time: the queue exists, and is drained.
    assert value(after, "fieldline_queue_messages", queue="telemetry.storage") == 0
    assert ("fieldline_queue_messages", (("queue", "telemetry.dead"),)) in after
    for service in ("mqtt_auth", "ingestor", "storage"):
        assert value(after, "fieldline_service_info", service=service) == 1


@pytest.mark.parametrize("stack_kind", ["real"])
def test_alert_counters_move_with_a_sent_and_a_refused_mail(alert_stack):
    base = alert_stack.running.base_url
    before = scrape(base)
    with alert_stack.user() as client:
        device = alert_stack.device(client, "metered mast")
        rule = alert_stack.rule(
            client,
            name="metered",
            device_id=device["id"],
            field="temperature",
            condition="above",
            crit=30,
            recipients=["ops@example.com", "bounce@example.com"],  # the server refuses bounce@
        )
        answer = client.post(f"/api/v1/alert-rules/{rule['id']}/test")
        assert answer.status_code in (200, 202), answer.text
    alert_stack.wait_mails(1, to="ops@example.com")

    def moved(name: str, **labels) -> float:
        return value(scrape(base), name, **labels) - value(before, name, **labels)

    wait_for(
        lambda: (
            moved("fieldline_alerts_sent_total", channel="mail") >= 1
            and moved("fieldline_alerts_delivery_failures_total", channel="mail", outcome="failed")
            >= 1
        ),
        20,
        "one mail counted as sent and one as failed",
    )
    assert moved("fieldline_alerts_sent_total", channel="mail") == 1
    assert moved("fieldline_alerts_delivery_failures_total", channel="mail", outcome="failed") == 1
