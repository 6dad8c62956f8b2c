"""Shared fixtures: real services (fail, never skip, when one is missing) and
bounded hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, settings

from tests.support.servers import (
    MosquittoInstance,
    create_pg_database,
    drop_pg_database,
    free_port,
    require_port,
    service_env,
)

# CI: bounded and derandomized (the same examples every run, so a landing is never
# decided by luck); `dev` draws new examples each run to keep finding bugs.
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    return service_env()


@pytest.fixture(scope="session")
def pg_admin_url(services) -> str:
    url = services["FIELDLINE_TEST_PG_URL"]
    require_port(urlsplit(url).port or 5432, "PostgreSQL")
    return url


@pytest.fixture
def pg_url(pg_admin_url) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = create_pg_database(pg_admin_url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def amqp_url(services) -> str:
    url = services["FIELDLINE_TEST_AMQP_URL"]
    require_port(urlsplit(url).port or 5672, "RabbitMQ")
    return url


@pytest.fixture(scope="session")
def influx_url(services) -> str:
    url = services["FIELDLINE_TEST_INFLUX_URL"]
    require_port(urlsplit(url).port or 8086, "InfluxDB")
    return url


@pytest.fixture(scope="session")
def smtp_sink(services) -> tuple[int, str]:
    """(port, maildir) of the shared aiosmtpd sink."""
    port = int(services["FIELDLINE_TEST_SMTP_PORT"])
    require_port(port, "the aiosmtpd SMTP sink")
    return port, services["FIELDLINE_TEST_SMTP_MAILDIR"]


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[MosquittoInstance]:
    """A private Mosquitto with the project's configuration and empty password/ACL files."""
    broker = MosquittoInstance(tmp_path / "mosquitto", free_port(), project_config=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def anonymous_mosquitto(tmp_path) -> Iterator[MosquittoInstance]:
    """A private Mosquitto that admits anyone (device SDK tests)."""
    broker = MosquittoInstance(tmp_path / "mosquitto-anon", free_port(), project_config=False)
    broker.start()
    yield broker
    broker.stop()
