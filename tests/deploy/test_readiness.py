"""Issue 8, "Done when" 4: /readyz goes unready when its database or its queue goes away
and ready again when it returns. The services run against the real PostgreSQL and
RabbitMQ through a forwarder the test cuts and restores (tcp_forwarder.py), so the real
clients see a real server vanish: refused connections, open ones reset."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from fieldline_backend.common.settings import Settings
from tests.deploy.tcp_forwarder import TcpForwarder
from tests.pipeline.support import Vhost
from tests.support.servers import wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.real


def through(url: str, forwarder: TcpForwarder) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{forwarder.port}"))


@pytest.fixture
def forwarded(pg_url, amqp_url):
    """(database url, queue url, db forwarder, queue forwarder) on a private vhost."""
    vhost = Vhost(amqp_url).create()
    db = TcpForwarder(urlsplit(pg_url).port or 5432)
    queue = TcpForwarder(urlsplit(amqp_url).port or 5672)
    yield through(pg_url, db), through(vhost.url, queue), db, queue
    db.close()
    queue.close()
    vhost.delete()


def readiness(base_url: str) -> tuple[int, dict]:
    response = httpx.get(f"{base_url}/readyz", timeout=15)
    body = response.json()
    return response.status_code, body.get("checks") or body.get("detail", {}).get("checks", {})


def wait_readiness(base_url: str, status: int, what: str, timeout: float = 20) -> dict:
    seen: list = []

    def reached() -> bool:
        seen[:] = readiness(base_url)
        return seen[0] == status

    try:
        wait_for(reached, timeout, what, interval=0.3)
    except AssertionError as error:
        raise AssertionError(f"{error}; last /readyz: {seen}") from None
    return seen[1]


def test_readyz_follows_the_database_and_the_queue(forwarded, influx_url, tmp_path):
    database_url, queue_url, db, queue = forwarded
    settings = Settings(
        data_dir=tmp_path / "data",
        internal_token=secrets.token_urlsafe(32),
        http_port=0,
        database_url=database_url,
        amqp_url=queue_url,
        influx_url=influx_url,
        influx_database=f"fltest_{secrets.token_hex(6)}",
        mqtt_url="mqtt://fieldline-ingestor:unused@127.0.0.1:9",  # not started here
    )
    # devices needs the database, storage the queue: one process, both checks.
    with running_stack(settings, ("devices", "storage")) as stack:
        base = stack.base_url
        checks = wait_readiness(base, 200, "ready at start")
        assert checks["database"] and checks["queue"], checks

        db.cut()
        checks = wait_readiness(base, 503, "unready without PostgreSQL")
        assert checks["database"] is False and checks["queue"] is True, checks
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # alive all along
        db.restore()
        checks = wait_readiness(base, 200, "ready again with PostgreSQL back")
        assert checks["database"] and checks["queue"], checks

        queue.cut()
        checks = wait_readiness(base, 503, "unready without RabbitMQ")
        assert checks["queue"] is False and checks["database"] is True, checks
        queue.restore()
        checks = wait_readiness(base, 200, "ready again with RabbitMQ back")
        assert checks["queue"] and checks["database"], checks
        # The storage worker came back on its own connection too (not just the probe).
        wait_for(
            lambda: stack.ctx.extras["storage"].workers[0].consumer is not None,
            20,
            "the storage worker to reconnect",
        )
    assert db.connections > 0 and queue.connections > 0
