"""Runs a set of services in this process under uvicorn until Ctrl-C."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from fieldline_backend.app import build_runtime
from fieldline_backend.common.data_dir import make_private
from fieldline_backend.common.http_connections import (
    GuardedServer,
    accept_batch,
    guarded_protocol,
    raise_open_files_limit,
)
from fieldline_backend.common.logs import setup_logging
from fieldline_backend.common.settings import Settings

log = logging.getLogger(__name__)


def describe(settings: Settings) -> str:
    """Where each port of this process points, for people starting it."""

    def pick(url: str | None, embedded: str) -> str:
        return url.split("@")[-1] if url else embedded

    data = settings.data_dir
    base = settings.http_base_url
    database, mail = data / "fieldline.db", data / "mail"
    lines = [
        f"Fieldline API      {base}/api/v1  (docs: {base}/docs)",
        f"MQTT broker        {pick(settings.mqtt_url, f'embedded on port {settings.mqtt_port}')}",
        f"database           {pick(settings.database_url, f'SQLite {database}')}",
        f"queue              {pick(settings.amqp_url, f'local queue in {data}')}",
        f"time series        {pick(settings.influx_url, f'SQLite in {data}')}",
        f"mail               {pick(settings.smtp_url, f'maildir {mail}')}",
        f"data dir           {data}",
        f"logs               {log_path(settings)}",
    ]
    return "\n".join(lines)


def log_path(settings: Settings) -> Path:
    """Where a process started from the command line appends its log (and stderr)."""
    return settings.data_dir / "logs" / "fieldline.log"


def prepare_process(settings: Settings, log_file: Path | None, console: bool = True) -> None:
    """Before serving: a private data dir (when we keep files in it), logging, fds."""
    if log_file is not None:  # `up` and `demo` own their data dir
        make_private(settings.data_dir)
    setup_logging(
        settings.log_format,
        settings.log_level,
        log_file=log_file,
        console=console,
        max_bytes=settings.log_file_max_bytes,
        backups=settings.log_file_backups,
        repeat_interval=settings.log_repeat_interval,
    )
    soft, _hard = raise_open_files_limit()
    if soft and settings.http_max_connections > soft // 2:
        log.warning(
            "FIELDLINE_HTTP_MAX_CONNECTIONS=%d is over half the open files limit (%d): "
            "HTTP clients can starve MQTT and the databases of descriptors",
            settings.http_max_connections,
            soft,
        )


def run_services(settings: Settings, services: Sequence[str], banner: bool) -> None:
    # `fieldline up` keeps a log in the data dir; `serve` (containers) logs to stderr only.
    prepare_process(settings, log_path(settings) if banner else None)
    server = server_for(settings, services)
    if banner:
        print(describe(settings), flush=True)
    server.run()


def server_for(settings: Settings, services: Sequence[str]) -> uvicorn.Server:
    """The services under uvicorn on settings' address, logging through our handlers,
    with the connection limits of docs/deploy.md ("HTTP limits")."""
    config = uvicorn.Config(
        build_runtime(settings, services),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="auto",  # uvloop (a dependency) where it installs, else asyncio's own
        # Forwarded headers only from the configured proxies (uvicorn alone trusts
        # 127.0.0.1, so any local client could choose its own address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or [],
        # Our h11 protocol: a bound on connections, header and idle deadlines
        # (backend/common/http_connections.py says why uvicorn's own are not enough).
        http=guarded_protocol(
            settings.http_max_connections,
            settings.http_header_timeout,
            settings.http_idle_timeout,
            settings.http_max_header_bytes,
        ),
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        backlog=accept_batch(settings.http_max_connections),
    )
    return GuardedServer(config)
