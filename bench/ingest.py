"""The telemetry pipeline's limit, latency and scale on the real stack, against the
broker's own limit measured in the same run (docs/pipeline.md has the results).

Starts a private Mosquitto (project config), a fresh PostgreSQL database, a private
RabbitMQ vhost and an InfluxDB database of its own; mqtt_auth runs in this process, the
ingestors and storage workers as `fieldline serve` processes (as in production). The
load comes from the broker's C clients (bench/load.py: one `mosquitto_pub -l` per
device, QoS 1), so the generator is not what is measured. In one run:

  baseline   mosquitto_pub -> Mosquitto -> mosquitto_sub: msg/s (the broker's limit)
  python     the same load, bare paho subscribers (QoS 1, count only; one process each,
             a shared subscription as the ingestors have, as many as --workers' last):
             what any Python ingestor set could take from this broker here
  e2e        readings/s stored in InfluxDB (first publish -> last point visible) with
             N ingestors and N storage workers, N from --workers (the curve)
  latency    at a fixed offered rate (default 2,000/s): publish -> visible in InfluxDB,
             p50/p95/p99 (InfluxDB polled every 20 ms), and the time of each hop
             (the services' histograms at /metrics, bucket-interpolated)
  embedded   the embedded defaults in one process (amqtt, group commit into the local
             queue, SQLite series): readings/s PUBACKed and stored

Run by hand, with the machine otherwise idle (`scripts/services.sh up` first):
  .venv/bin/python bench/ingest.py [--readings 40000] [--devices 20] [--rate 2000]
      [--workers 1,2,4] [--latency-workers 1] [--embedded-readings 20000]
      [--listening-devices 200]
The last line is
`RESULT e2e_per_s=<n> baseline_per_s=<n> ratio=<r> p99_ms=<n> embedded_per_s=<n>`
(e2e: the best of the curve; baseline: the broker's limit; ratio: e2e / baseline).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.load import CpuUse, Publishers, Subscriber, require_clients  # noqa: E402
from fieldline_backend.common.settings import Settings  # noqa: E402
from tests.pipeline.support import ServiceProcess, Vhost, influx_statement  # noqa: E402
from tests.support.servers import (  # noqa: E402
    MosquittoInstance,
    create_pg_database,
    drop_pg_database,
    free_port,
    service_env,
    wait_for,
)
from tests.support.stack import running_stack  # noqa: E402

POLL_S = 0.02
LOOK_BACK_MS = 500
HOPS = (  # (what, process, histogram) in the order a reading takes them
    ("ingestor -> queue confirm", "ingestor", "fieldline_ingestor_confirm_seconds"),
    ("stamp -> storage batch", "storage", "fieldline_storage_wait_seconds"),
    ("batch prepare", "storage", "fieldline_storage_prepare_seconds"),
    ("InfluxDB write", "storage", "fieldline_storage_write_seconds"),
)


def progress(text: str) -> None:
    print(f"\r  {text:<70}", end="", flush=True)


def percentile(samples, q) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# ---- the broker alone -----------------------------------------------------------------


def broker_limit(host, port, backend, accounts, total) -> float:
    subscriber = Subscriber(host, port, *backend, total)
    run = Publishers(host, port, accounts).as_fast_as_acked(total, seq_start=10**8)
    return subscriber.received(run.started)


def _bare_subscriber(host, port, backend, group, count, last, ready) -> None:
    """A paho subscriber that does nothing but count (QoS 1: it PUBACKs each)."""

    def on_message(client, userdata, message):
        with count.get_lock():
            count.value += 1
        last.value = time.time()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bench-baseline-{os.getpid()}",
        protocol=mqtt.MQTTv311,
    )
    client.username_pw_set(*backend)
    client.on_message = on_message
    client.on_subscribe = lambda *a: ready.set()
    client.connect(host, port)
    client.subscribe(f"$share/{group}/devices/+/telemetry", qos=1)
    client.loop_forever()


def python_subscribers(host, port, backend, accounts, total, subscribers) -> float:
    """Bare paho subscribers, each its own process, sharing the subscription as the
    ingestors do: what Python subscribers can take from this broker."""
    group = f"bench{secrets.token_hex(3)}"
    counters = []
    for _ in range(subscribers):
        count, last, ready = (
            multiprocessing.Value("q", 0),
            multiprocessing.Value("d", 0.0),
            (multiprocessing.Event()),
        )
        process = multiprocessing.Process(
            target=_bare_subscriber,
            args=(host, port, backend, group, count, last, ready),
            daemon=True,
        )
        process.start()
        ready.wait(10)
        counters.append((process, count, last))
    run = Publishers(host, port, accounts).as_fast_as_acked(total, seq_start=10**9)

    def received() -> int:
        return sum(count.value for _, count, _ in counters)

    def newest() -> float:
        return max(last.value for _, _, last in counters)

    deadline = time.time() + 120
    while received() < total and time.time() < deadline and time.time() - newest() < 15:
        time.sleep(0.1)
    got = received()
    if got < total:
        print(f"\n  baseline subscribers got {got} of {total}")
    for process, _, _ in counters:
        process.terminate()
    return got / (newest() - run.started)


# ---- the pipeline ---------------------------------------------------------------------


_influx = httpx.Client(timeout=30)  # one connection: a client per poll cost this process
# a TLS context and a connect each time (~0.1 core at the polling rates below)


def influx_query(influx, database, query) -> list:
    response = _influx.get(f"{influx}/query", params={"db": database, "epoch": "ms", "q": query})
    return response.json()["results"][0].get("series", [])


def stored_count(influx, database, since_ms) -> int:
    series = influx_query(
        influx, database, f'SELECT count("@received") FROM telemetry WHERE time >= {since_ms}ms'
    )
    return int(series[0]["values"][0][1]) if series else 0


def end_to_end(host, port, accounts, total, influx, database, seq_start) -> float:
    since = int(time.time() * 1000) - 1000
    before = stored_count(influx, database, since)
    result: dict = {}
    publisher = threading.Thread(
        target=lambda: result.update(
            run=Publishers(host, port, accounts).as_fast_as_acked(total, seq_start=seq_start)
        )
    )
    publisher.start()

    def done():
        count = stored_count(influx, database, since) - before
        progress(f"e2e: {count}/{total} stored")
        return count >= total

    wait_for(done, 300, "every reading stored", interval=0.1)
    finished = time.time()
    publisher.join()
    print()
    return total / (finished - result["run"].started)  # from the first line handed over


class Scrape:
    """The services' hop histograms, read before and after a run (the difference)."""

    def __init__(self, processes: dict[str, list[ServiceProcess]]):
        self.processes = processes
        self.before = self._read()

    def _read(self) -> dict[str, list[tuple[float, float]]]:
        """histogram -> [(upper bound, cumulative count)], summed over the processes."""
        buckets: dict[str, dict[float, float]] = {}
        for _, service, name in HOPS:
            for process in self.processes[service]:
                text = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=10).text
                for family in text_string_to_metric_families(text):
                    if family.name != name:
                        continue
                    for sample in family.samples:
                        if sample.name.endswith("_bucket"):
                            bound = float(sample.labels["le"])
                            counts = buckets.setdefault(name, {})
                            counts[bound] = counts.get(bound, 0) + sample.value
        return {name: sorted(counts.items()) for name, counts in buckets.items()}

    def hops(self) -> list[tuple[str, float, float, int]]:
        """(what, p50 ms, p99 ms, observations) per hop over the run."""
        after = self._read()
        rows = []
        for what, _, name in HOPS:
            before = dict(self.before.get(name, []))
            diff = [(bound, count - before.get(bound, 0)) for bound, count in after.get(name, [])]
            total = diff[-1][1] if diff else 0
            rows.append((what, _quantile(diff, 0.5), _quantile(diff, 0.99), int(total)))
        return rows


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear inside the bucket, as Prometheus' histogram_quantile (ms)."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower * 1000
            return (lower + (bound - lower) * (rank - below) / max(count - below, 1)) * 1000
        lower, below = bound, count
    return lower * 1000


def latency(host, port, accounts, rate, seconds, influx, database, scrape) -> list[float]:
    total = int(rate * seconds)
    since = int(time.time() * 1000) + 500
    result: dict = {}
    publisher = threading.Thread(
        target=lambda: result.update(
            run=Publishers(host, port, accounts).paced(rate, seconds, seq_start=10**7)
        )
    )
    publisher.start()
    samples: list[float] = []
    to_ingestor: list[float] = []
    seen: set[tuple[str, int]] = set()
    cursor = since
    deadline = time.time() + seconds + 60
    queries: list[float] = []
    while len(seen) < total and time.time() < deadline:
        # Points of different devices land out of ts order: look back, count once.
        query = (
            f'SELECT "@received" FROM telemetry WHERE time > {cursor - LOOK_BACK_MS}ms '
            'GROUP BY "device_id"'
        )
        asked = time.time() * 1000
        series_list = influx_query(influx, database, query)
        now_ms = time.time() * 1000  # visible by the answer: an upper bound
        queries.append(now_ms - asked)
        for series in series_list:
            device = series["tags"]["device_id"]
            for ts, received in series["values"]:
                if ts > since and (device, ts) not in seen:
                    seen.add((device, ts))
                    samples.append(now_ms - ts)
                    to_ingestor.append(received - ts)
                    cursor = max(cursor, ts)
        progress(f"latency: {len(seen)}/{total} stored")
        time.sleep(POLL_S)
    publisher.join()
    print()
    print("  hops (p50 / p99 ms):")
    print(
        f"    {'publish -> ingestor stamp':<28} {percentile(to_ingestor, 0.5):6.0f} "
        f"{percentile(to_ingestor, 0.99):6.0f}   (the points' @received - ts)"
    )
    for what, p50, p99, count in scrape.hops():
        print(f"    {what:<28} {p50:6.0f} {p99:6.0f}   ({count} observations, /metrics)")
    print(
        f"    {'visible (the poll)':<28} {percentile(queries, 0.5):6.0f} "
        f"{percentile(queries, 0.99):6.0f}   a query every {POLL_S * 1000:.0f} ms, its "
        "answer's time counted: the bench's share of the total"
    )
    if len(seen) < total:
        print(f"  {total - len(seen)} readings not seen within {LOOK_BACK_MS} ms of the newest")
    return samples


def start_workers(n, common, work, processes, running) -> None:
    """Up to n ingestors and n storage workers (ids reused, so no persistent session of
    a stopped replica keeps a share of the next run's messages)."""
    for service in ("ingestor", "storage"):
        while len(running[service]) < n:
            i = len(running[service])
            env = {**common, "FIELDLINE_INGESTOR_CLIENT_ID": f"bench-ingestor-{i}"}
            process = ServiceProcess(service, env, work / f"{service}-{i}.log").start()
            running[service].append(process)
            processes.append(process)


def real_stack(args) -> tuple[float, float, float, float]:
    """(best e2e, baseline: the broker with its own C clients, p99) on the real stack."""
    env = service_env()
    work = Path(tempfile.mkdtemp(prefix="fl-bench-"))
    mosquitto = MosquittoInstance(work / "mosquitto", free_port()).start()
    pg = create_pg_database(env["FIELDLINE_TEST_PG_URL"])
    vhost = Vhost(env["FIELDLINE_TEST_AMQP_URL"]).create()
    influx = env["FIELDLINE_TEST_INFLUX_URL"]
    database = f"flbench_{secrets.token_hex(4)}"
    backend = ("fieldline-ingestor", secrets.token_urlsafe(18))
    settings = Settings(
        data_dir=work / "data",
        http_port=free_port(),
        internal_token=secrets.token_urlsafe(24),
        database_url=pg,
        amqp_url=vhost.url,
        influx_url=influx,
        influx_database=database,
        mqtt_url=f"mqtt://{backend[0]}:{backend[1]}@127.0.0.1:{mosquitto.port}",
        mosquitto_password_file=mosquitto.password_file,
        mosquitto_acl_file=mosquitto.acl_file,
        mosquitto_pid_file=mosquitto.pid_file,
    )
    processes: list[ServiceProcess] = []
    try:
        with running_stack(settings, ("mqtt_auth",)) as stack:
            accounts = register(stack, args.devices, tag=secrets.token_hex(2))
            host, port = "127.0.0.1", mosquitto.port
            total = args.readings
            print(f"real stack: {args.devices} devices, {total} readings a run, QoS 1")

            progress("baseline: mosquitto_pub -> mosquitto_sub")
            broker = broker_limit(host, port, backend, accounts, total)
            print(f"\r  baseline  {broker:9.0f} msg/s mosquitto_pub -> mosquitto_sub{'':20}")
            subscribers = max(args.workers)
            progress(f"python: {subscribers} bare paho subscribers")
            python_rate = python_subscribers(host, port, backend, accounts, total, subscribers)
            print(
                f"\r  python    {python_rate:9.0f} msg/s taken by {subscribers} bare paho "
                f"subscribers on one shared subscription ({python_rate / broker:.2f} of the "
                "baseline): what Python subscribers can take here"
            )

            common = {
                "FIELDLINE_DATA_DIR": str(work / "data"),
                "FIELDLINE_INTERNAL_TOKEN": settings.internal_token,
                "FIELDLINE_MQTT_AUTH_URL": stack.base_url,
                "FIELDLINE_DATABASE_URL": pg,
                "FIELDLINE_AMQP_URL": vhost.url,
                "FIELDLINE_INFLUX_URL": influx,
                "FIELDLINE_INFLUX_DATABASE": database,
                "FIELDLINE_MQTT_URL": settings.mqtt_url,
                "FIELDLINE_LOG_LEVEL": "WARNING",
            }
            if args.batch_seconds is not None:  # else production's default
                common["FIELDLINE_STORAGE_BATCH_SECONDS"] = str(args.batch_seconds)
            print(f"  logs in {work}")
            running: dict[str, list[ServiceProcess]] = {"ingestor": [], "storage": []}

            start_workers(args.latency_workers, common, work, processes, running)
            time.sleep(1)
            # Warm: the storage workers' device directory and connections are filled.
            end_to_end(host, port, accounts, 10 * len(accounts), influx, database, 10**5)
            scrape = Scrape(running)
            samples = latency(
                host, port, accounts, args.rate, args.seconds, influx, database, scrape
            )
            p50, p95, p99 = (percentile(samples, q) for q in (0.5, 0.95, 0.99))
            print(
                f"  latency at {args.rate}/s ({args.latency_workers} ingestor + "
                f"{args.latency_workers} storage): p50 {p50:.0f} ms  p95 {p95:.0f} ms  "
                f"p99 {p99:.0f} ms  ({len(samples)} readings; mean "
                f"{statistics.fmean(samples):.0f} ms)"
            )

            best = 0.0
            for n, workers in enumerate(args.workers):
                start_workers(workers, common, work, processes, running)
                time.sleep(1)
                cpu = CpuUse()
                rate = end_to_end(
                    host, port, accounts, total, influx, database, seq_start=(n + 1) * 10**6
                )
                print(
                    f"  e2e       {rate:9.0f} readings/s stored with {workers} ingestor(s) + "
                    f"{workers} storage worker(s) ({rate / broker:.2f} of the baseline)"
                )
                use = cpu.cores()
                print(
                    f"            cores used: {sum(c for _, c in use):.2f} of {os.cpu_count()}: "
                    + ", ".join(f"{group} {c:.2f}" for group, c in use if c >= 0.01)
                )
                best = max(best, rate)
            return best, broker, p99
    finally:
        for process in processes:
            process.stop()
        mosquitto.stop()
        drop_pg_database(pg)
        vhost.delete()
        influx_statement(influx, f'DROP DATABASE "{database}"')


def register(stack, devices: int, tag: str) -> list[dict]:
    accounts = []
    with stack.internal_client() as http:
        for i in range(devices):
            answer = http.post(
                "/internal/mqtt-accounts",
                json={
                    "device_id": f"dev-bench{i:04d}{tag}",
                    "owner_id": "bench",
                    "name": f"bench {i}",
                    "metadata": {"site": "lab"},
                },
            )
            answer.raise_for_status()
            accounts.append(answer.json())
    return accounts


# ---- the embedded defaults ------------------------------------------------------------


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def embedded(args) -> float:
    """amqtt + capture (group commit) + local queue + SQLite series, in this process."""
    work = Path(tempfile.mkdtemp(prefix="fl-bench-embedded-"))
    settings = Settings(
        data_dir=work / "data",
        http_port=free_port(),
        mqtt_port=free_port(),
        internal_token=secrets.token_urlsafe(24),
    )
    (work / "data").mkdir(parents=True)
    with running_stack(settings, ("mqtt_auth", "ingestor", "storage")) as stack:
        accounts = register(stack, args.devices, tag="")
        host, port = "127.0.0.1", settings.mqtt_port
        total = args.embedded_readings
        listening = listen(host, port, register(stack, args.listening_devices, tag="-l"))
        print(
            f"embedded: {args.devices} devices, {total} readings, QoS 1"
            + (f"; {len(listening)} more devices subscribed" if listening else "")
        )
        series = sqlite3.connect(work / "data" / "timeseries.db")

        def stored() -> int:
            return series.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

        cpu_before = process_cpu_seconds()
        run = Publishers(host, port, accounts).as_fast_as_acked(total)
        print(f"  acked     {run.per_s:9.0f} msg/s PUBACKed (committed in the local queue)")
        wait_for(lambda: stored() >= total, 600, "every reading stored", interval=0.2)
        rate = total / (time.time() - run.started)
        cpu_us = (process_cpu_seconds() - cpu_before) / total * 1e6
        print(f"  e2e       {rate:9.0f} readings/s stored in SQLite")
        print(
            f"  cpu       {cpu_us:9.0f} us of this process's CPU per reading (broker, capture, "
            "storage, all threads; steadier than the rates on a shared machine)"
        )
        series.close()
        for process in listening:
            process.terminate()
    return rate


def listen(host: str, port: int, accounts: list[dict]) -> list[subprocess.Popen]:
    """Devices connected and subscribed as the SDK's are (commands, config, OTA offer and
    chunks), publishing nothing: a broker that matches each message against every
    subscription pays for them."""
    processes = []
    for account in accounts:
        base = f"devices/{account['client_id']}"
        topics = [f"{base}/commands", f"{base}/config", f"{base}/ota/chunk", f"{base}/ota"]
        command = [
            "mosquitto_sub", "-h", host, "-p", str(port), "-V", "mqttv311", "-q", "1",
            "-i", account["client_id"], "-u", account["username"], "-P", account["password"],
        ]  # fmt: skip
        for topic in topics:
            command += ["-t", topic]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
    if processes:
        time.sleep(2)  # connected and subscribed
    return processes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=40_000, help="per throughput run")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rate", type=int, default=2000, help="offered rate for latency")
    parser.add_argument("--seconds", type=int, default=10, help="latency run length")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="ingestors = storage workers per e2e run, ascending (default 1,2,4)",
    )
    parser.add_argument("--latency-workers", type=int, default=1)
    parser.add_argument(
        "--batch-seconds", type=float, help="storage batch window (default: the settings')"
    )
    parser.add_argument("--embedded-readings", type=int, default=20_000)
    parser.add_argument(
        "--listening-devices",
        type=int,
        default=0,
        help="embedded: this many more devices connected and subscribed as the SDK's are",
    )
    parser.add_argument("--embedded", action="store_true", help="only the embedded defaults")
    args = parser.parse_args()
    if args.workers != sorted(args.workers):
        parser.error("--workers must ascend, e.g. 1,2,4")
    require_clients()
    if args.embedded:
        rate = embedded(args)
        print(f"RESULT embedded_per_s={rate:.0f}")
        return 0
    e2e, base_rate, p99 = real_stack(args)
    embedded_rate = embedded(args)
    print(
        f"RESULT e2e_per_s={e2e:.0f} baseline_per_s={base_rate:.0f} "
        f"ratio={e2e / base_rate:.2f} p99_ms={p99:.0f} embedded_per_s={embedded_rate:.0f}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FIELDLINE_LOG_LEVEL", "WARNING")
    sys.exit(main())
