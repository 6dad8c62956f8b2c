"""Case 5: mail survives an SMTP outage and a killed alerts service; delivered once.
Also: a refused address is recorded on the alert and not retried. Real stack only:
PostgreSQL, InfluxDB, our own aiosmtpd server, alerts as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.servers import free_port, port_open, wait_for

RULE = {
    "name": "too hot",
    "field": "temperature",
    "condition": "above",
    "crit": 30,
    "for": "0s",
    "recipients": ["ops@example.com", "bounce@example.com"],
}


def alerts_of(client) -> list[dict]:
    answer = client.get("/api/v1/alerts")
    assert answer.status_code == 200, answer.text
    return answer.json()


def deliveries(client) -> dict[str, dict]:
    [alert] = alerts_of(client)
    return {d["recipient"]: d for d in alert["deliveries"]}


@pytest.mark.parametrize("stack_kind", ["real"])
def test_smtp_down_during_a_breach_then_up_delivers_once(alert_stack):
    stack = alert_stack
    client = stack.user()
    device = stack.device(client, "Cold room")
    stack.rule(client, device_id=device["id"], **RULE)
    stack.smtp.stop()
    stack.feed(device["id"], 33.0)
    # Decided and recorded, but the server is down: pending, retried with backoff.
    wait_for(lambda: alerts_of(client), 30, "the alert in the history")
    wait_for(lambda: deliveries(client)["ops@example.com"]["attempts"] >= 3, 30, "3 attempts")
    pending = deliveries(client)["ops@example.com"]
    assert pending["status"] == "pending" and "unreachable" in pending["error"]
    stack.smtp.start()
    [mail] = stack.wait_mails(1)
    assert mail.to == "ops@example.com" and mail.subject.startswith("[CRIT] Cold room")
    stack.settle()
    assert len(stack.mails()) == 1
    sent = deliveries(client)
    assert sent["ops@example.com"]["status"] == "sent"
    # The refused address: recorded as failed with the server's answer, not retried.
    assert sent["bounce@example.com"]["status"] == "failed"
    assert "550" in sent["bounce@example.com"]["error"]
    stack.settle()
    assert deliveries(client)["bounce@example.com"] == sent["bounce@example.com"]


def start_alerts_process(settings, port: int, log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "FIELDLINE_DATA_DIR": str(settings.data_dir / "alerts-process"),
        "FIELDLINE_DATABASE_URL": settings.database_url,
        "FIELDLINE_SMTP_URL": settings.smtp_url,
        "FIELDLINE_INTERNAL_TOKEN": settings.internal_token,
        "FIELDLINE_HTTP_PORT": str(port),
        "FIELDLINE_ALERTS_RETRY_BASE": "0.2",
        "FIELDLINE_ALERTS_RETRY_MAX": "1",
    }
    log = open(log_path, "ab")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldline_backend.cli", "serve", "alerts"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: port_open(port) or process.poll() is not None, 60, "the alerts process")
    assert process.poll() is None, log_path.read_text()[-3000:]
    return process


@pytest.mark.slow
@pytest.mark.parametrize("stack_kind", ["real"])
def test_alerts_killed_mid_delivery_and_restarted_neither_loses_nor_repeats(
    start_alert_stack, tmp_path
):
    port = free_port()
    others = ("gateway", "devices", "mqtt_auth", "monitor")
    log_path = tmp_path / "alerts-process.log"
    with start_alert_stack(others, alerts_url=f"http://127.0.0.1:{port}") as stack:
        client = stack.user()
        device = stack.device(client, "Server room")
        process = start_alerts_process(stack.settings, port, log_path)
        try:
            stack.rule(
                client, device_id=device["id"], **{**RULE, "recipients": ["ops@example.com"]}
            )
            stack.smtp.stop()
            stack.feed(device["id"], 40.0)
            wait_for(lambda: port_open(port) and alerts_of(client), 30, "the alert recorded")
            wait_for(lambda: deliveries(client)["ops@example.com"]["attempts"] >= 2, 30, "retries")
            process.send_signal(signal.SIGKILL)  # no goodbye: whatever was in memory is lost
            process.wait(10)
            stack.smtp.start()
            time.sleep(1.0)
            assert stack.mails() == []  # nobody else sends it
            process = start_alerts_process(stack.settings, port, log_path)
            [mail] = stack.wait_mails(1)
            assert mail.subject.startswith("[CRIT] Server room")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
    # A monitor that lost its memory (restart) posts the standing crit again: the
    # alerts service's stored state says it was told, so no second mail.
    process = start_alerts_process(stack.settings, port, log_path)
    try:
        with start_alert_stack(others, alerts_url=f"http://127.0.0.1:{port}") as again:
            again.feed(device["id"], 40.0)
            again.settle(cycles=6)
            assert len(again.mails()) == 1, [m.subject for m in again.mails()]
            auth = {"Authorization": client.headers["Authorization"]}
            with again.running.client(headers=auth) as same_user:
                assert [a["kind"] for a in alerts_of(same_user)] == ["alert"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
