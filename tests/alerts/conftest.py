"""A Fieldline process with the alert path (gateway, devices, mqtt_auth, monitor,
alerts) on the two stacks the product runs on:

- "real":     PostgreSQL (fresh database), InfluxDB 1.x (a database of its own), our own
              aiosmtpd SMTP server (stoppable), a private Mosquitto for mqtt_auth;
- "embedded": SQLite, the SQLite time-series store, the maildir, the amqtt broker.

Readings are written straight into the time-series store through its adapter (the
telemetry pipeline is another issue's); the monitor runs every 0.5 s.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.infra.mail.maildir import MaildirMailer
from fieldline_backend.infra.timeseries import Marks, Point, open_timeseries
from tests.alerts.smtp_server import SmtpServer
from tests.support.servers import MosquittoInstance, free_port, wait_for
from tests.support.stack import RunningStack, running_stack

ALERT_SERVICES = ("gateway", "devices", "mqtt_auth", "monitor", "alerts")
INTERVAL = 0.5


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    sender: str


def _mail_of(message, to: str) -> Mail:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return Mail(
        to=to,
        subject=str(message["Subject"]).strip(),  # unfolded: a folded header keeps a space
        text=text.get_content() if text else "",
        html=html.get_content() if html else "",
        message_id=str(message["Message-ID"]),
        sender=str(message["From"]),
    )


class WebhookSink:
    """A real HTTP server that records the JSON bodies posted to it."""

    def __init__(self):
        self.bodies: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                sink.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class AlertStack:
    kind: str
    running: RunningStack
    smtp: SmtpServer | None
    store: object
    webhook: WebhookSink
    feeders: list = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.running.settings

    # ---- people and devices ------------------------------------------------------------

    def user(self) -> httpx.Client:
        from fieldline_backend.gateway.users import create_user_in

        username, password = f"user{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        create_user_in(self.settings, username, password)
        with self.running.client() as client:
            answer = client.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        return self.running.client(headers={"Authorization": f"Bearer {token}"})

    def device(self, client: httpx.Client, name: str, metadata: dict | None = None) -> dict:
        answer = client.post("/api/v1/devices", json={"name": name, "metadata": metadata or {}})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def rule(self, client: httpx.Client, **body) -> dict:
        answer = client.post("/api/v1/alert-rules", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    # ---- readings ----------------------------------------------------------------------

    def write(self, device_id: str, ts_ms: int, **values) -> None:
        marks = Marks(received=int(time.time() * 1000))
        self.store.write([Point(device_id=device_id, ts_ms=ts_ms, fields=values, marks=marks)])

    def feed(self, device_id: str, value: float, every: float = 0.2) -> Feeder:
        """A device sending `temperature` every `every` s, stamped now; change
        feeder.value, pause with feeder.paused = True."""
        feeder = Feeder(self, device_id, value, every)
        self.feeders.append(feeder)
        feeder.start()
        return feeder

    # ---- mail --------------------------------------------------------------------------

    def mails(self) -> list[Mail]:
        if self.smtp is not None:
            return [_mail_of(m.message, to) for m in self.smtp.messages for to in m.recipients]
        box = MaildirMailer(self.settings.data_dir / "mail")
        return [_mail_of(m, str(m["To"])) for m in box.messages()]

    def wait_mails(self, count: int, timeout: float = 30.0, to: str | None = None) -> list[Mail]:
        def enough():
            found = [m for m in self.mails() if to is None or m.to == to]
            return found if len(found) >= count else None

        return wait_for(enough, timeout, f"{count} mail(s){' to ' + to if to else ''}")

    def settle(self, cycles: int = 4) -> None:
        """Let a few monitor cycles and outbox rounds pass (to see nothing more comes)."""
        time.sleep(cycles * INTERVAL + 1.0)


class Feeder(threading.Thread):
    def __init__(self, stack: AlertStack, device_id: str, value: float, every: float):
        super().__init__(daemon=True, name=f"feeder-{device_id}")
        self.stack, self.device_id, self.value, self.every = stack, device_id, value, every
        self.paused = False
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            if not self.paused:
                self.stack.write(self.device_id, int(time.time() * 1000), temperature=self.value)

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


STACK_KINDS = ("real", "embedded")


@pytest.fixture(params=STACK_KINDS)
def stack_kind(request) -> str:
    return request.param


@pytest.fixture
def influx_database(influx_url) -> Iterator[str]:
    name = f"alerts_{uuid.uuid4().hex[:12]}"
    yield name
    httpx.post(f"{influx_url}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=30)


@pytest.fixture
def start_alert_stack(stack_kind, request, tmp_path):
    """start_alert_stack(**settings) -> context manager; call again to restart."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    common = {
        "data_dir": data_dir,
        "http_port": 0,
        "internal_token": secrets.token_urlsafe(32),
        "monitor_interval": INTERVAL,
        # Generous: a loaded machine must not make fresh readings look like backlog.
        "monitor_late_after": 15.0,
        "alerts_retry_base": 0.2,
        "alerts_retry_max": 1.0,
        "notify_influxdb_secret": secrets.token_urlsafe(16),
        "notify_kapacitor_secret": secrets.token_urlsafe(16),
        "mail_from": "Fieldline <alerts@fieldline.test>",
    }
    smtp = None
    brokers: list[MosquittoInstance] = []
    if stack_kind == "real":
        smtp = SmtpServer(tmp_path / "smtp", refuse={"bounce@example.com"}).start()
        broker = MosquittoInstance(tmp_path / "mosquitto", free_port()).start()
        brokers.append(broker)
        common.update(
            database_url=request.getfixturevalue("pg_url"),
            influx_url=request.getfixturevalue("influx_url"),
            influx_database=request.getfixturevalue("influx_database"),
            smtp_url=f"smtp://127.0.0.1:{smtp.port}",
            mqtt_url=f"mqtt://fieldline-ingestor:{secrets.token_urlsafe(12)}@127.0.0.1:{broker.port}",
            mosquitto_password_file=broker.password_file,
            mosquitto_acl_file=broker.acl_file,
            mosquitto_pid_file=broker.pid_file,
        )
    else:
        common["mqtt_port"] = free_port()
    webhook = WebhookSink()
    stacks: list[AlertStack] = []

    @contextmanager
    def start(services=ALERT_SERVICES, **overrides) -> Iterator[AlertStack]:
        settings = Settings(**{**common, **overrides})
        store = open_timeseries(settings)
        store.ensure_schema()
        with running_stack(settings, services) as running:
            stack = AlertStack(stack_kind, running, smtp, store, webhook)
            stacks.append(stack)
            try:
                yield stack
            finally:
                for feeder in stack.feeders:
                    feeder.stop()
                store.close()

    yield start
    webhook.close()
    if smtp is not None:
        smtp.stop()
    for broker in brokers:
        broker.stop()


@pytest.fixture
def alert_stack(start_alert_stack) -> Iterator[AlertStack]:
    with start_alert_stack() as stack:
        yield stack
