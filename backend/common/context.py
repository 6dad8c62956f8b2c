"""What a service's build(ctx, adapters) gets besides its adapters: the settings, the
relational database, and clients for the other services' APIs."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import httpx

from fieldline_backend.common.db import Database
from fieldline_backend.common.internal import INTERNAL_TOKEN_HEADER
from fieldline_backend.common.settings import Settings


@dataclass
class Context:
    """Made once per process by the composition root (app.build_runtime)."""

    settings: Settings
    services: tuple[str, ...]
    # In-process objects a service shares between its build() and its routes
    # (looked up by the service's own key); never how adapters are chosen.
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def database(self) -> Database:
        return Database(self.settings.sqlalchemy_url)

    @cached_property
    def internal_token(self) -> str:
        return self.settings.effective_internal_token

    @cached_property
    def accepted_internal_tokens(self) -> tuple[str, ...]:
        also = self.settings.internal_token_also_accepted
        return (self.internal_token, also) if also else (self.internal_token,)

    def service_client(self, service: str, timeout: float = 10.0) -> httpx.AsyncClient:
        """An HTTP client for another service's API, carrying the internal token."""
        return httpx.AsyncClient(**self._client_options(service, timeout))

    def sync_service_client(self, service: str, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(**self._client_options(service, timeout))

    def _client_options(self, service: str, timeout: float) -> dict[str, Any]:
        return {
            "base_url": self.settings.service_url(service),
            "headers": {INTERNAL_TOKEN_HEADER: self.internal_token},
            "timeout": timeout,
            "verify": _tls_context(),
        }


@cache
def _tls_context() -> ssl.SSLContext:
    """One per process: a client made without it loads the CA bundle into a new context,
    ~20 ms of CPU, and the gateway makes a client per call to storage (a telemetry query
    took 38 ms, 24 a second with 8 in parallel). Same defaults as httpx's own."""
    return httpx.create_ssl_context()
