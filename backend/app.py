"""Composition root: the only place that reads settings' URLs and picks adapters.

`build_runtime(settings, services)` returns a FastAPI app whose lifespan migrates
the database, starts the embedded infrastructure this process needs and the
requested services, and stops them in reverse order.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError

from fieldline_backend.common.component import Component
from fieldline_backend.common.db import Database
from fieldline_backend.common.http_limits import BodyLimitMiddleware, route_overrides
from fieldline_backend.common.internal import INTERNAL_TOKEN_HEADER
from fieldline_backend.common.metrics import PROCESS_SERVICES, watch_queue_depth
from fieldline_backend.common.metrics import router as metrics_router
from fieldline_backend.common.readiness import QUEUE_SERVICES, shared_checks
from fieldline_backend.common.settings import SERVICES, Settings
from fieldline_backend.common.validation import (
    database_refused_response,
    validation_error_response,
)
from fieldline_backend.infra.broker import start_embedded_broker

log = logging.getLogger(__name__)


@dataclass
class Context:
    """Everything a service's build() may use. Adapters are made lazily, once."""

    settings: Settings
    services: tuple[str, ...]
    extras: dict[str, Any] = field(default_factory=dict)  # in-process objects shared by services

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
        return httpx.AsyncClient(
            base_url=self.settings.service_url(service),
            headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            timeout=timeout,
        )

    def sync_service_client(self, service: str, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.settings.service_url(service),
            headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            timeout=timeout,
        )


def build_component(ctx: Context, service: str) -> Component:
    module = importlib.import_module(f"fieldline_backend.{service}.component")
    return module.build(ctx)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return validation_error_response(error)


async def _database_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, DataError)
    log.info("database refused a value: %s", str(error.orig).splitlines()[0] if error.orig else "")
    return database_refused_response(error)


def build_runtime(settings: Settings, services: Sequence[str] = SERVICES) -> FastAPI:
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown service(s) {sorted(unknown)}; choose from {list(SERVICES)}")
    ctx = Context(settings=settings, services=tuple(services))
    components = [build_component(ctx, name) for name in services]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.database.migrate()
        started: list[Component] = []
        embedded_broker = None
        try:
            # Before the services: they register their amqtt plugins at build time.
            embedded_broker = await start_embedded_broker(ctx)
            for component in components:
                await component.start()
                started.append(component)
                log.info("service started", extra={"service": component.name})
            yield
        finally:
            for component in reversed(started):
                try:
                    await component.stop()
                except Exception:
                    log.exception("service failed to stop cleanly: %s", component.name)
            if embedded_broker is not None:
                await embedded_broker.stop()
            ctx.database.dispose()

    app = FastAPI(
        title="Fieldline",
        version="0.1.0",
        description="Telemetry and alerting for ESP32 sensor fleets.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    # Every route, public or internal: a 422 that can be written even for the NaN and
    # lone-surrogate input FastAPI's default handler fails on with a 500.
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _database_refused)
    # Bodies over FIELDLINE_HTTP_MAX_BODY_BYTES (or a route's max_body_size=) get a 413
    # before they are read.
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.http_max_body_bytes,
        overrides=route_overrides(r for c in components for r in c.routers),
    )
    for component in components:
        for router in component.routers:
            app.include_router(router)
    app.include_router(metrics_router)  # GET /metrics, Prometheus text format
    for name in services:
        PROCESS_SERVICES.labels(service=name).set(1)
    if set(services) & set(QUEUE_SERVICES):
        watch_queue_depth(settings)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok", "services": list(ctx.services)}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict:
        checks: dict[str, bool] = await shared_checks(ctx)  # database, queue
        for component in components:
            for name, ok in (await component.ready()).items():
                checks[f"{component.name}.{name}"] = ok
        if not all(checks.values()):
            from fastapi import HTTPException

            raise HTTPException(status_code=503, detail={"checks": checks})
        return {"status": "ready", "checks": checks}

    return app
