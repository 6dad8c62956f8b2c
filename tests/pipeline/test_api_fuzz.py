"""schemathesis against the telemetry and status routes (public and internal) of a
running pipeline: no generated request, valid or not, gets a 5xx. Bounded like the
registry's fuzz test: 25 requests per operation at most and a time budget."""

from __future__ import annotations

import re
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.pipeline.conftest import ALL
from tests.pipeline.support import reading

OURS = re.compile(r"^/(api/v1/devices/\{device_id\}/(telemetry|status)|internal/telemetry/)")
BUDGET_SECONDS = 40.0


@pytest.mark.parametrize("pipeline_kind", ["embedded"])
def test_telemetry_routes_never_answer_5xx(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as owner:
        device = pipeline.device(owner, "fuzzed")
        device.publish_all([reading(s, ts=1_764_000_000_000 + s) for s in range(5)])
        pipeline.wait_stored({device.device_id: 5})
        base = pipeline.running.base_url
        headers = {
            "Authorization": owner.headers["Authorization"],
            "X-Fieldline-Internal": pipeline.internal_token,
        }
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        ours = [op for op in operations if OURS.match(op.path)]
        assert len(ours) >= 5, [op.label for op in operations]
        stop_at = time.monotonic() + BUDGET_SECONDS
        calls = 0
        for operation in ours:
            # The real device's id, so that requests get past the owner check.
            cases = st.one_of(
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )

            @settings(
                max_examples=25,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=cases, real_id=st.booleans())
            def call(case, real_id):
                nonlocal calls
                if time.monotonic() > stop_at:
                    return
                calls += 1
                if real_id and case.path_parameters and "device_id" in case.path_parameters:
                    case.path_parameters["device_id"] = device.device_id
                case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])

            call()
        assert calls >= len(ours)
        device.close()
