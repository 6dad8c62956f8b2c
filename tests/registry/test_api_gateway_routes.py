"""The gateway serves every module in fieldline_backend.gateway.routes, and its OpenAPI
document describes the bearer sign-in."""

from __future__ import annotations

from pathlib import Path

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway import routes
from fieldline_backend.gateway.component import route_modules
from tests.support.servers import free_port
from tests.support.stack import running_stack


def test_every_module_in_routes_is_included():
    files = {p.stem for p in Path(routes.__path__[0]).glob("*.py") if p.stem != "__init__"}
    assert {name.rsplit(".", 1)[1] for name in route_modules()} == files
    assert {"auth", "users", "tokens", "devices"} <= files


def test_openapi_lists_the_public_routes_with_bearer_auth(tmp_path):
    settings = Settings(
        data_dir=tmp_path, http_port=0, mqtt_port=free_port(), internal_token="i" * 32
    )
    with running_stack(settings, ("gateway",)) as stack, stack.client() as http:
        document = http.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/tokens/{token_id}",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}",
        "/api/v1/devices/{device_id}/credentials/rotate",
    ):
        assert path in paths, path
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("flows", {}).get("password") for s in schemes.values())
