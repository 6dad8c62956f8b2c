"""Bad input gets a 422 on every route, internal ones included, even when the input
cannot be echoed as JSON (NaN, Infinity, lone surrogates) or passes validation and is
then refused by the database (a NUL byte in PostgreSQL text): never a 500."""

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


def mqtt_auth_stack(tmp_path, database_url=None):
    settings = Settings(
        data_dir=tmp_path, http_port=free_port(), mqtt_port=free_port(), database_url=database_url
    )
    return running_stack(settings, ("mqtt_auth",))


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(request, tmp_path):
    database_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with mqtt_auth_stack(tmp_path, database_url) as running:
        yield running


@pytest.mark.parametrize("body", UNWRITABLE)
def test_internal_route_answers_422_for_input_it_cannot_echo(stack, body):
    with stack.internal_client() as http:
        answer = http.post(
            "/internal/mqtt-accounts", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"], "the 422 names what is wrong"


def test_a_nul_byte_postgresql_cannot_store_is_a_422_and_creates_nothing(pg_url, tmp_path):
    body = {"device_id": "dev-nul", "owner_id": "owner\u0000", "name": "n", "metadata": {}}
    with mqtt_auth_stack(tmp_path, pg_url) as stack, stack.internal_client() as http:
        answer = http.post("/internal/mqtt-accounts", json=body)
        assert answer.status_code == 422, answer.text
        assert "NUL" in answer.json()["detail"]
        assert http.get("/internal/devices/by-client/dev-nul").status_code == 404
