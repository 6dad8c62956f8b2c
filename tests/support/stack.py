"""A whole Fieldline process (or a subset of its services) running under uvicorn in a
background thread on a free port, for integration tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from fieldline_backend.app import Context, build_runtime
from fieldline_backend.common.settings import SERVICES, Settings
from tests.support.servers import free_port, wait_for


@dataclass
class RunningStack:
    settings: Settings
    ctx: Context
    server: uvicorn.Server

    @property
    def base_url(self) -> str:
        return self.settings.http_base_url

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def internal_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=30,
            headers={"X-Fieldline-Internal": self.ctx.internal_token},
        )


@contextmanager
def running_stack(settings: Settings, services: Sequence[str] = SERVICES) -> Iterator[RunningStack]:
    """Start the services on settings.http_port (0 = pick a free port); stop on exit."""
    if not settings.http_port:
        settings = settings.model_copy(update={"http_port": free_port()})
    app = build_runtime(settings, services)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.http_port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fieldline-stack", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 60, "the stack to start")
        if not server.started:
            raise AssertionError("the Fieldline stack failed to start; see the log above")
        yield RunningStack(settings=settings, ctx=app.state.ctx, server=server)
    finally:
        server.should_exit = True
        thread.join(30)
