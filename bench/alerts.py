"""Alerting numbers: one monitor cycle at scale, and breach-to-mail latency.

  cycle      one evaluation cycle of the monitor with 1,000 rules over 1,000 devices
             against InfluxDB (two shapes: one rule per device; 1,000 rules of 10
             devices each through selectors), first cycle (reads `for` + 60 s of
             history) and steady cycles (one new reading per device between cycles).
             Baseline in the same run: one bare InfluxQL query, and 1,000 of them one
             after the other (what a query per rule costs at the least).
  latency    breach -> mail at the SMTP server with the default interval (10 s):
             gateway, devices, mqtt_auth, monitor and alerts in one process on
             PostgreSQL + InfluxDB + a private Mosquitto, mail to an aiosmtpd server;
             devices breach at random moments, p50/p95 of (mail arrived - reading written).

Run by hand with the machine otherwise idle (`scripts/services.sh up` first):
  .venv/bin/python bench/alerts.py [--only cycle|latency] [--samples 30] [--interval 10]
The last line is `RESULT cycle_s=<n> ... p50_s=<n> p95_s=<n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from fieldline_backend.alerts.rules import validate_rule  # noqa: E402
from fieldline_backend.infra.timeseries import Marks, Point  # noqa: E402
from fieldline_backend.infra.timeseries.influx import InfluxStore  # noqa: E402
from fieldline_backend.monitor.devices import WatchedDevice  # noqa: E402
from fieldline_backend.monitor.runner import Monitor  # noqa: E402
from tests.support.servers import service_env  # noqa: E402


def say(text: str) -> None:
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# ---- one cycle at scale ----------------------------------------------------------------


def fill(store: InfluxStore, devices: list[str], now_ms: int, minutes: int = 5) -> None:
    points = []
    for ts in range(now_ms - minutes * 60_000, now_ms, 10_000):
        for index, device in enumerate(devices):
            value = 20.0 + (index % 17)
            points.append(Point(device, ts, {"temperature": value}, {}, Marks(received=ts)))
    for start in range(0, len(points), 10_000):
        store.write(points[start : start + 10_000])
        say(f"  wrote {min(start + 10_000, len(points))}/{len(points)} points")


def make_rules(devices: list[str], shape: str) -> list[dict]:
    """1000 threshold rules: one per device, or on selectors over groups of devices."""
    rules = []
    for index in range(1000):
        where = (
            {"device_id": devices[index]}
            if shape == "per-device"
            else {"selector": {"group": str(index % 100)}}
        )
        spec = validate_rule(
            {
                "name": f"r{index}",
                "field": "temperature",
                "condition": "above",
                "crit": 30 + index % 5,
                "for": "30s",
                "recipients": ["x@y.z"],
                **where,
            }
        )
        rules.append({**spec, "id": f"rul-{shape}-{index}", "owner_id": "1", "updated_ms": 0})
    return rules


def bench_cycle(influx_url: str, cycles: int) -> dict:
    database = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    store = InfluxStore(influx_url, database)
    store.ensure_schema()
    try:
        devices = [f"dev-bench{index:07d}" for index in range(1000)]
        now = int(time.time() * 1000)
        say(f"cycle: writing 5 minutes of readings of {len(devices)} devices into {database}")
        fill(store, devices, now)
        owned = [
            WatchedDevice(d, f"bench {i}", {"group": str(i % 100)}) for i, d in enumerate(devices)
        ]

        baseline_one = []
        for _ in range(50):
            started = time.perf_counter()
            store.query([devices[0]], ["temperature"], now - 30_000, now + 60_000)
            baseline_one.append(time.perf_counter() - started)
        started = time.perf_counter()
        for device in devices:
            store.query([device], ["temperature"], now - 30_000, now + 60_000)
        baseline_1000 = time.perf_counter() - started
        say(
            "baseline: one bare InfluxQL query p50 "
            f"{statistics.median(baseline_one) * 1000:.1f} ms; "
            f"1,000 of them in a row {baseline_1000:.2f} s"
        )
        results = {
            "baseline_query_ms": statistics.median(baseline_one) * 1000,
            "baseline_1000_queries_s": baseline_1000,
        }
        for shape in ("per-device", "selector-10"):
            rules = make_rules(devices, shape)
            posted: list[int] = []

            async def fetch_rules(rules=rules):
                return rules

            async def fetch_devices(owner_id: str):
                return owned

            async def post(payloads, posted=posted):
                posted.append(len(payloads))

            monitor = Monitor(store, fetch_rules, fetch_devices, post, interval_s=10.0)

            async def run(monitor=monitor):
                first = await monitor.cycle()
                steady = []
                for _ in range(cycles):
                    ts = int(time.time() * 1000)
                    store.write(
                        [
                            Point(d, ts, {"temperature": 25.0}, {}, Marks(received=ts))
                            for d in devices
                        ]
                    )
                    steady.append(await monitor.cycle())
                return first, steady

            first, steady = asyncio.run(run())
            seconds = [r.seconds for r in steady]
            say(
                f"cycle [{shape}]: {first.rules} rules, {first.devices} (rule, device) pairs, "
                f"{first.queries} queries; first cycle {first.seconds:.2f} s "
                f"(posted {first.posted} levels); steady p50 {statistics.median(seconds):.2f} s, "
                f"max {max(seconds):.2f} s, {steady[-1].queries} queries, "
                f"errors {len(first.errors)}"
            )
            results[f"{shape}_first_s"] = first.seconds
            results[f"{shape}_steady_s"] = statistics.median(seconds)
        return results
    finally:
        httpx.post(f"{influx_url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=60)
        store.close()


# ---- breach to mail ----------------------------------------------------------------------


def bench_latency(samples: int, interval: float, env: dict) -> dict:
    from fieldline_backend.common.settings import Settings
    from fieldline_backend.gateway.users import create_user_in
    from fieldline_backend.infra.timeseries import open_timeseries
    from tests.alerts.smtp_server import SmtpServer
    from tests.support.servers import (
        MosquittoInstance,
        create_pg_database,
        drop_pg_database,
        free_port,
    )
    from tests.support.stack import running_stack

    work = Path(tempfile.mkdtemp(prefix="fieldline-bench-alerts-"))
    smtp = SmtpServer(work / "smtp").start()
    arrivals: dict[str, float] = {}
    original = smtp.handler.handle_DATA

    async def stamped(server, session, envelope):
        answer = await original(server, session, envelope)
        subject = smtp.handler.received[-1].message["Subject"]
        arrivals.setdefault(str(subject).split(":")[0].split("] ")[-1].strip(), time.time())
        return answer

    smtp.handler.handle_DATA = stamped
    broker = MosquittoInstance(work / "mosquitto", free_port()).start()
    pg_url = create_pg_database(env["FIELDLINE_TEST_PG_URL"])
    database = f"bench_latency_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=work / "data",
        http_port=free_port(),
        internal_token=secrets.token_urlsafe(32),
        database_url=pg_url,
        influx_url=env["FIELDLINE_TEST_INFLUX_URL"],
        influx_database=database,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        monitor_interval=interval,
        mqtt_url=f"mqtt://fieldline-ingestor:{secrets.token_urlsafe(12)}@127.0.0.1:{broker.port}",
        mosquitto_password_file=broker.password_file,
        mosquitto_acl_file=broker.acl_file,
        mosquitto_pid_file=broker.pid_file,
    )
    settings.data_dir.mkdir(parents=True)
    store = open_timeseries(settings)
    store.ensure_schema()
    written: dict[str, float] = {}
    try:
        with running_stack(
            settings, ("gateway", "devices", "mqtt_auth", "monitor", "alerts")
        ) as stack:
            password = secrets.token_urlsafe(16)
            create_user_in(settings, "bench", password)
            with stack.client() as anon:
                token = anon.post(
                    "/api/v1/auth/token", data={"username": "bench", "password": password}
                ).json()
            client = stack.client(headers={"Authorization": f"Bearer {token['access_token']}"})
            names = [f"bench{index:03d}" for index in range(samples)]
            ids = {}
            for name in names:
                device = client.post("/api/v1/devices", json={"name": name}).json()
                ids[name] = device["id"]
                answer = client.post(
                    "/api/v1/alert-rules",
                    json={
                        "name": "hot",
                        "device_id": device["id"],
                        "field": "temperature",
                        "condition": "above",
                        "crit": 30,
                        "for": "0s",
                        "recipients": ["ops@example.com"],
                    },
                )
                assert answer.status_code == 201, answer.text
            stop = threading.Event()

            def normal_readings():
                while not stop.wait(1.0):
                    ts = int(time.time() * 1000)
                    store.write(
                        [
                            Point(ids[n], ts, {"temperature": 20.0}, {}, Marks(received=ts))
                            for n in names
                            if n not in written
                        ]
                    )

            feeder = threading.Thread(target=normal_readings, daemon=True)
            feeder.start()
            time.sleep(2 * interval)  # monitor warmed up: every rule ok
            window = max(3 * interval, samples * 1.0)
            say(
                f"latency: {samples} devices breach at random moments over {window:.0f} s "
                f"(interval {interval} s)"
            )
            moments = sorted((random.uniform(0, window), name) for name in names)
            began = time.monotonic()
            for at, name in moments:
                time.sleep(max(0.0, began + at - time.monotonic()))
                ts = int(time.time() * 1000)
                written[name] = time.time()
                store.write([Point(ids[name], ts, {"temperature": 35.0}, {}, Marks(received=ts))])
            deadline = time.monotonic() + 3 * interval + 30
            shown = -1
            while len(arrivals) < samples and time.monotonic() < deadline:
                time.sleep(0.2)
                if len(arrivals) != shown:
                    shown = len(arrivals)
                    say(f"  {shown}/{samples} mails arrived")
            stop.set()
            client.close()
    finally:
        store.close()
        smtp.stop()
        broker.stop()
        httpx.post(
            f"{env['FIELDLINE_TEST_INFLUX_URL']}/query",
            data={"q": f'DROP DATABASE "{database}"'},
            timeout=60,
        )
        drop_pg_database(pg_url)
    latencies = [arrivals[n] - written[n] for n in names if n in arrivals]
    missing = samples - len(latencies)
    say(
        f"latency: {len(latencies)} mails (missing {missing}); "
        f"p50 {statistics.median(latencies):.2f} s, "
        f"p95 {pct(latencies, 0.95):.2f} s, max {max(latencies):.2f} s"
    )
    return {
        "p50_s": statistics.median(latencies),
        "p95_s": pct(latencies, 0.95),
        "missing": missing,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("cycle", "latency"))
    parser.add_argument("--samples", type=int, default=30, help="breaches timed (default 30)")
    parser.add_argument("--interval", type=float, default=10.0, help="monitor interval, s")
    parser.add_argument("--cycles", type=int, default=5, help="steady cycles timed (default 5)")
    args = parser.parse_args(argv)
    env = service_env()
    results: dict = {}
    if args.only in (None, "cycle"):
        results.update(bench_cycle(env["FIELDLINE_TEST_INFLUX_URL"], args.cycles))
    if args.only in (None, "latency"):
        results.update(bench_latency(args.samples, args.interval, env))
    print(
        "RESULT "
        + " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items()
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
