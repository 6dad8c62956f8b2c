"""The demo and the simulator as a person runs them: real subprocesses, real ports.

`start_pipeline` comes from tests/pipeline: the real-infrastructure stack (PostgreSQL,
a private Mosquitto with the project's auth, a RabbitMQ vhost, an InfluxDB database).
"""

from __future__ import annotations

import pytest

from tests.pipeline.conftest import start_pipeline  # noqa: F401 - a fixture, used by name


@pytest.fixture
def pipeline_kind() -> str:
    return "real"
