"""Bad input gets a 422 on every route, internal ones included, even when the input
cannot be echoed as JSON (NaN, Infinity, lone surrogates): never a 500."""

from __future__ import annotations

import pytest

from fieldline_backend.common.settings import Settings
from tests.support.servers import free_port
from tests.support.stack import running_stack

UNWRITABLE = [
    b'{"device_id": "d", "owner_id": "o", "name": "n", "metadata": NaN}',
    b'{"device_id": "d", "owner_id": "o", "name": ["x"], "metadata": {"k": -Infinity}}',
    b'{"device_id": "d", "owner_id": "o", "name": "\\ud800", "metadata": []}',
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("validation"),
        http_port=free_port(),
        mqtt_port=free_port(),
    )
    with running_stack(settings, ("mqtt_auth",)) as running:
        yield running


@pytest.mark.parametrize("body", UNWRITABLE)
def test_internal_route_answers_422_for_input_it_cannot_echo(stack, body):
    with stack.internal_client() as http:
        answer = http.post(
            "/internal/mqtt-accounts", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"], "the 422 names what is wrong"
