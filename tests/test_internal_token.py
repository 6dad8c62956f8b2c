"""/internal routes take the internal token, and during a rotation also the one named by
FIELDLINE_INTERNAL_TOKEN_ALSO_ACCEPTED; anything else is a 401."""

from __future__ import annotations

import ssl

import httpx
import pytest

from fieldline_backend.common.context import Context
from fieldline_backend.common.settings import Settings
from tests.support.servers import free_port
from tests.support.stack import running_stack

CURRENT = "current-token-6f1d0c2b9e"
PREVIOUS = "previous-token-3a7e5d41c8"


def status_with(base_url: str, token: str | None) -> int:
    headers = {"X-Fieldline-Internal": token} if token is not None else {}
    answer = httpx.get(f"{base_url}/internal/devices/by-client/nobody", headers=headers)
    return answer.status_code


@pytest.mark.parametrize("also_accepted", [None, PREVIOUS])
def test_only_the_configured_tokens_open_internal_routes(tmp_path, also_accepted):
    settings = Settings(
        data_dir=tmp_path,
        http_port=free_port(),
        mqtt_port=free_port(),
        internal_token=CURRENT,
        internal_token_also_accepted=also_accepted,
    )
    with running_stack(settings, ("mqtt_auth",)) as stack:
        assert status_with(stack.base_url, CURRENT) == 404  # let in: no such device
        assert status_with(stack.base_url, PREVIOUS) == (404 if also_accepted else 401)
        for wrong in (None, "", CURRENT[:-1], CURRENT + PREVIOUS):
            assert status_with(stack.base_url, wrong) == 401, wrong


def test_service_clients_share_one_tls_context(tmp_path, monkeypatch):
    """A client per internal call is cheap only while no client loads the CA bundle into
    a new SSL context of its own (~20 ms of CPU each; it was on every telemetry query)."""
    made = []
    real = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: made.append(1) or real(*a, **k)
    )
    ctx = Context(Settings(data_dir=tmp_path, internal_token=CURRENT), services=())
    clients = [ctx.service_client("storage") for _ in range(5)]
    clients += [ctx.sync_service_client("devices") for _ in range(5)]
    assert len(made) <= 1, f"{len(made)} SSL contexts for {len(clients)} clients"
    assert all(c.headers["X-Fieldline-Internal"] == CURRENT for c in clients)
    for client in clients[5:]:
        client.close()
