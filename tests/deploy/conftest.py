"""The pipeline and alert stacks of tests/pipeline and tests/alerts, reused here."""

from tests.alerts.conftest import (  # noqa: F401 - fixtures
    alert_stack,
    influx_database,
    stack_kind,
    start_alert_stack,
)
from tests.pipeline.conftest import pipeline_kind, start_pipeline  # noqa: F401 - fixtures
