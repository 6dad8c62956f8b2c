"""Checks behind `/readyz` that several services share: the database and the queue.

A check answers within a couple of seconds whatever the dependency does (a stopped
server refuses at once; a black hole hits the timeout), so an orchestrator's probe
never hangs. Each opens a connection of its own or pings the pool: they say whether
the dependency answers now, not whether some earlier connection survived.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text

log = logging.getLogger(__name__)

# Services whose requests need the relational database at run time. ingestor, storage
# and monitor only migrate it at start; their readiness does not hang on it.
DATABASE_SERVICES = ("gateway", "devices", "mqtt_auth", "alerts")
# Services that move telemetry through the queue.
QUEUE_SERVICES = ("ingestor", "storage")

CHECK_TIMEOUT_S = 3.0


def database_reachable(database) -> bool:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception as error:
        log.info("readiness: database unreachable: %s", error)
        return False


def queue_reachable(probe) -> bool:
    """RabbitMQ answers an AMQP handshake and knows the storage queue (local queue: the
    file is usable). `probe` is the queue port's infra.queue.QueueProbe."""
    if probe.reachable():
        return True
    log.info("readiness: queue unreachable")
    return False


async def shared_checks(ctx, queue_probe) -> dict[str, bool]:
    """The database and queue checks this process's services call for."""
    checks: dict[str, bool] = {}
    services = set(ctx.services)
    jobs = {}
    if services & set(DATABASE_SERVICES):
        jobs["database"] = asyncio.to_thread(database_reachable, ctx.database)
    if services & set(QUEUE_SERVICES):
        jobs["queue"] = asyncio.to_thread(queue_reachable, queue_probe)
    for name, job in jobs.items():
        try:
            checks[name] = await asyncio.wait_for(job, CHECK_TIMEOUT_S + 2)
        except TimeoutError:
            checks[name] = False
    return checks
