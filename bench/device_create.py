"""Device creation end to end, through the public API, including the broker update.

For each stack (real: PostgreSQL + a private Mosquitto kept through its files + SIGHUP;
embedded: SQLite + the in-process amqtt broker) this starts gateway + devices +
mqtt_auth in one process and times, N times each:

  baseline   GET /healthz (same process, same HTTP client)
  create     POST /api/v1/devices -> 201 (returns after the broker applied the change)
  usable     POST /api/v1/devices, then a CONNECT with the new credentials accepted

and, for the real stack, the broker update alone (rewrite both files, SIGHUP, wait until
Mosquitto admits the reload-check user) with 10, 1000 and 10000 accounts.

Run by hand (needs `scripts/services.sh up` for PostgreSQL):
  .venv/bin/python bench/device_create.py [--count 50] [--stack real|embedded|both]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldline_backend.common.settings import Settings  # noqa: E402
from fieldline_backend.gateway.users import create_user_in  # noqa: E402
from fieldline_backend.infra.broker.probe import connack_code  # noqa: E402
from tests.support.servers import (  # noqa: E402
    MosquittoInstance,
    create_pg_database,
    drop_pg_database,
    free_port,
    service_env,
)
from tests.support.stack import running_stack  # noqa: E402

SERVICES = ("gateway", "devices", "mqtt_auth")


def bench_mosquitto_apply(count: int) -> None:
    from fieldline_backend.infra.broker import BrokerAccount
    from fieldline_backend.infra.broker.mosquitto import MosquittoFiles
    from fieldline_backend.infra.broker.passwords import hash_password

    workdir = Path(tempfile.mkdtemp(prefix="fieldline-bench-apply-"))
    broker = MosquittoInstance(workdir / "mosquitto", free_port()).start()
    try:
        files = MosquittoFiles(
            broker.password_file, broker.acl_file, broker.pid_file, ("127.0.0.1", broker.port)
        )
        one_hash = hash_password(secrets.token_urlsafe(24))
        print("Mosquitto broker update alone (files + SIGHUP + confirmed reload)")
        for size in (10, 1000, 10000):
            accounts = [
                BrokerAccount(f"dev-{n}", one_hash, (f"devices/dev-{n}/#",), ())
                for n in range(size)
            ]

            def apply(accounts=accounts) -> None:
                files._applied = False  # force the rewrite, as after a change
                asyncio.run(files.apply(accounts))

            print(summary(f"{size} acc", timed(f"{size} acc", min(count, 20), apply)))
    finally:
        broker.stop()


def timed(label: str, count: int, action: Callable[[], None]) -> list[float]:
    samples = []
    for index in range(count):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
        print(f"\r  {label:<9} {index + 1}/{count}", end="", flush=True)
    print("\r" + " " * 40 + "\r", end="")
    return samples


def summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"  {label:<9} median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   "
        f"min {ordered[0]:7.2f} ms   (n={len(ordered)})"
    )


def bench_stack(kind: str, count: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"fieldline-bench-{kind}-"))
    values: dict = {"data_dir": workdir / "data", "http_port": 0}
    mosquitto = None
    pg_url = None
    if kind == "real":
        pg_url = create_pg_database(service_env()["FIELDLINE_TEST_PG_URL"])
        mosquitto = MosquittoInstance(workdir / "mosquitto", free_port()).start()
        values.update(
            database_url=pg_url,
            mqtt_url=f"mqtt://ingestor:{secrets.token_urlsafe(12)}@127.0.0.1:{mosquitto.port}",
            mosquitto_password_file=mosquitto.password_file,
            mosquitto_acl_file=mosquitto.acl_file,
            mosquitto_pid_file=mosquitto.pid_file,
        )
    else:
        values["mqtt_port"] = free_port()
    values["data_dir"].mkdir(parents=True)
    settings = Settings(**values)
    try:
        with running_stack(settings, SERVICES) as stack:
            password = secrets.token_urlsafe(16)
            create_user_in(stack.settings, "bench", password)
            with stack.client() as http:
                token = http.post(
                    "/api/v1/auth/token", data={"username": "bench", "password": password}
                ).json()["access_token"]
                http.headers["Authorization"] = f"Bearer {token}"
                host, port = stack.settings.broker_address

                def create() -> dict:
                    answer = http.post("/api/v1/devices", json={"name": "bench", "metadata": {}})
                    assert answer.status_code == 201, answer.text
                    return answer.json()["mqtt"]

                def usable() -> None:
                    mqtt = create()
                    code = asyncio.run(
                        connack_code(
                            host, port, mqtt["client_id"], mqtt["username"], mqtt["password"]
                        )
                    )
                    assert code == 0, f"new device refused right after creation: {code}"

                for _ in range(5):  # warm up connections and caches
                    http.get("/healthz")
                    create()
                baseline = timed("baseline", count, lambda: http.get("/healthz"))
                created = timed("create", count, create)
                connectable = timed("usable", count, usable)
        broker = "PostgreSQL + Mosquitto (files + SIGHUP)" if kind == "real" else "SQLite + amqtt"
        print(f"{kind}: {broker}")
        print(summary("baseline", baseline))
        print(summary("create", created))
        print(summary("usable", connectable))
    finally:
        if mosquitto is not None:
            mosquitto.stop()
        if pg_url is not None:
            drop_pg_database(pg_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=50, help="timed requests each (default 50)")
    parser.add_argument("--stack", choices=("real", "embedded", "both"), default="both")
    args = parser.parse_args(argv)
    for kind in ("real", "embedded") if args.stack == "both" else (args.stack,):
        bench_stack(kind, args.count)
    if args.stack in ("real", "both"):
        bench_mosquitto_apply(args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
