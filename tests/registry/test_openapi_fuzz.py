"""Issue 2, "Done when" 6: schemathesis against the running API's /openapi.json finds no
5xx, on both stacks. Bounded: at most 25 generated requests per operation (valid and
invalid ones mixed) and a time budget per stack; no shrinking, so a failure reports the
first request that broke it.

It covers the operations of the processes it starts (gateway, devices, mqtt_auth); the
routes other services add under /api/v1 need their own stacks and are not fuzzed here.
"""

from __future__ import annotations

import re
import time

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from fieldline_backend.gateway.auth import accounts_for

SERVICES = ("gateway", "devices", "mqtt_auth")
OURS = re.compile(
    r"^/(api/v1/(auth/token|me|users|tokens|devices|bundles|rollouts)"
    r"|internal/(devices|mqtt-accounts|bundles|rollouts)|healthz)"
)
EXAMPLES_PER_OPERATION = 25
BUDGET_SECONDS = 45.0  # per stack


def test_no_operation_answers_5xx(start_stack):
    with start_stack(SERVICES) as stack:
        base = stack.running.base_url
        accounts_for(stack.running.ctx).users.create("fuzzer", "fuzzer password", admin=True)
        with stack.running.client() as http:
            token = http.post(
                "/api/v1/auth/token", data={"username": "fuzzer", "password": "fuzzer password"}
            ).json()["access_token"]
            # One real device so that generated ids sometimes meet an existing one.
            http.post(
                "/api/v1/devices",
                json={"name": "seed", "metadata": {}},
                headers={"Authorization": f"Bearer {token}"},
            )
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Fieldline-Internal": stack.running.ctx.internal_token,
        }
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        ours = [op for op in operations if OURS.match(op.path)]
        assert len(ours) >= 12, [op.label for op in operations]

        stop_at = time.monotonic() + BUDGET_SECONDS
        calls = 0
        for operation in ours:
            cases = st.one_of(
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=cases)
            def call(case):
                nonlocal calls
                if time.monotonic() > stop_at:
                    return  # time budget spent: the remaining examples do nothing
                calls += 1
                case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])

            call()
        assert calls >= len(ours), "the time budget ran out before every operation was tried"
