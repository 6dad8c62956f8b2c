"""The outbox on its own, against real databases and real receivers: a webhook that
fails with 503 is retried with backoff and delivered once; a 404 is recorded as failed
and not retried; an SMTP server that refuses an address fails that message only."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fieldline_backend.alerts.models import OutboxRow
from fieldline_backend.alerts.outbox import Outbox
from fieldline_backend.alerts.payloads import Notification
from fieldline_backend.alerts.service import AlertService
from fieldline_backend.common.db import Database
from fieldline_backend.infra.mail.smtp import SmtpMailer
from tests.alerts.smtp_server import SmtpServer


class FlakyReceiver:
    """Answers each path with the next status in its script (then 204), recording bodies."""

    def __init__(self, scripts: dict[str, list[int]]):
        self.scripts = {path: list(codes) for path, codes in scripts.items()}
        self.received: list[tuple[str, int, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                codes = receiver.scripts.get(self.path, [])
                status = codes.pop(0) if codes else 204
                receiver.received.append((self.path, status, body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+psycopg://")
    else:
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


def rows(db) -> dict[str, OutboxRow]:
    with db.session() as session:
        return {row.recipient: row for row in session.query(OutboxRow)}


def test_webhooks_retry_on_5xx_and_record_4xx(database, tmp_path):
    receiver = FlakyReceiver({"/busy": [503, 503], "/gone": [404]})
    smtp = SmtpServer(tmp_path / "smtp", refuse={"bounce@example.com"}).start()
    try:
        service = AlertService(database, "http://fieldline.test")
        rule = service.create_rule("7", {
            "name": "r", "kind": "external",
            "recipients": [f"webhook:{receiver.url('/busy')}", f"webhook:{receiver.url('/gone')}",
                           "ops@example.com", "bounce@example.com"]})  # fmt: skip
        note = Notification(rule_id=rule["id"], check_name="c", level="crit", message="hot",
                            time_ms=1_700_000_000_000, device_key="k")  # fmt: skip
        assert service.receive([note])[0]["sent"] == "alert"
        outbox = Outbox(database, SmtpMailer.from_url(f"smtp://127.0.0.1:{smtp.port}"),
                        sender="f@fieldline.test", retry_base=0.05, retry_max=0.2)  # fmt: skip

        async def drain():
            try:
                for _ in range(100):
                    await outbox.deliver_due()
                    if all(r.status != "pending" for r in rows(database).values()):
                        return
                    await asyncio.sleep(0.05)
            finally:
                await outbox.http.aclose()

        asyncio.run(drain())
        found = rows(database)
        busy, gone = found[receiver.url("/busy")], found[receiver.url("/gone")]
        assert (busy.status, busy.attempts) == ("sent", 3)
        assert (gone.status, gone.attempts) == ("failed", 1) and "404" in gone.last_error
        assert found["ops@example.com"].status == "sent"
        assert found["bounce@example.com"].status == "failed"
        assert [status for path, status, _ in receiver.received if path == "/busy"] == [
            503,
            503,
            204,
        ]
        assert receiver.received[-1][2]["alert"]["level"] == "crit"
        assert [m.recipients for m in smtp.messages] == [["ops@example.com"]]
    finally:
        receiver.close()
        smtp.stop()
