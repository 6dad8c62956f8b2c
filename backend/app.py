"""Composition root: the only place that reads settings' URLs and picks adapters.

`build_runtime(settings, services)` makes the process's `Adapters` (infra/adapters.py)
once, builds each requested service with them, and returns a FastAPI app whose lifespan
migrates the database, starts the embedded broker if this process needs one, then the
services, and stops them in reverse order.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError

from fieldline_backend.common.component import Component
from fieldline_backend.common.context import Context
from fieldline_backend.common.http_limits import BodyLimitMiddleware, route_overrides
from fieldline_backend.common.metrics import PROCESS_SERVICES, watch_queue_depth
from fieldline_backend.common.metrics import router as metrics_router
from fieldline_backend.common.openapi import install_openapi
from fieldline_backend.common.readiness import QUEUE_SERVICES, shared_checks
from fieldline_backend.common.settings import SERVICES, Settings
from fieldline_backend.common.validation import (
    database_refused_response,
    validation_error_response,
)
from fieldline_backend.infra.adapters import Adapters
from fieldline_backend.infra.queue import QUEUES, local_queue_path

__all__ = ["Adapters", "Context", "build_adapters", "build_runtime"]

log = logging.getLogger(__name__)

BROKER_USERS = ("mqtt_auth", "ingestor")  # services that need the embedded broker here


def build_adapters(settings: Settings, services: Sequence[str]) -> Adapters:
    """The adapters of a process running `services`; connects to nothing."""
    plugins: dict[str, dict] = {}
    if settings.embedded_broker and "ingestor" in services:
        # The ingestor takes telemetry inside amqtt, before the PUBACK.
        from fieldline_backend.ingestor.embedded import PLUGIN

        plugins[PLUGIN] = {"queue_path": str(local_queue_path(settings))}
    return Adapters(settings=settings, broker_plugins=plugins)


def build_component(ctx: Context, adapters: Adapters, service: str) -> Component:
    module = importlib.import_module(f"fieldline_backend.{service}.component")
    return module.build(ctx, adapters)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return validation_error_response(error)


async def _database_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, DataError)
    log.info("database refused a value: %s", str(error.orig).splitlines()[0] if error.orig else "")
    return database_refused_response(error)


def _lifespan(
    ctx: Context, adapters: Adapters, components: list[Component]
) -> Callable[[FastAPI], Any]:
    needs_broker = ctx.settings.embedded_broker and set(BROKER_USERS) & set(ctx.services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.database.migrate()
        started: list[Component] = []
        broker = None
        try:
            if needs_broker and adapters.embedded_broker is not None:  # made on first use
                await adapters.embedded_broker.start()  # before the services use it
                broker = adapters.embedded_broker
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
            if broker is not None:
                await broker.stop()
            ctx.database.dispose()

    return lifespan


def _add_health_routes(
    app: FastAPI, ctx: Context, adapters: Adapters, components: list[Component]
) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok", "services": list(ctx.services)}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict:
        checks: dict[str, bool] = await shared_checks(ctx, adapters.queue_probe)
        for component in components:
            for name, ok in (await component.ready()).items():
                checks[f"{component.name}.{name}"] = ok
        if not all(checks.values()):
            raise HTTPException(status_code=503, detail={"checks": checks})
        return {"status": "ready", "checks": checks}


def build_runtime(settings: Settings, services: Sequence[str] = SERVICES) -> FastAPI:
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown service(s) {sorted(unknown)}; choose from {list(SERVICES)}")
    ctx = Context(settings=settings, services=tuple(services))
    adapters = build_adapters(settings, services)
    components = [build_component(ctx, adapters, name) for name in services]

    app = FastAPI(
        title="Fieldline",
        version="0.1.0",
        description="Telemetry and alerting for ESP32 sensor fleets.",
        lifespan=_lifespan(ctx, adapters, components),
    )
    app.state.ctx = ctx
    app.state.adapters = adapters
    # Every route, public or internal: a 422 that can be written even for the NaN and
    # lone-surrogate input FastAPI's default handler fails on with a 500.
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _database_refused)
    install_openapi(app)  # the document lists every error an operation can answer
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
        watch_queue_depth(adapters.queue_probe, QUEUES)
    _add_health_routes(app, ctx, adapters, components)
    return app
