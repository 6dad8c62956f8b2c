"""End-to-end telemetry throughput and latency on the real stack, against a baseline.

Starts a private Mosquitto (project config), a fresh PostgreSQL database, a private
RabbitMQ vhost and an InfluxDB database of its own; mqtt_auth runs in this process, the
ingestor and the storage worker as `fieldline serve` processes (as in production).
Simulated devices publish QoS 1 from a separate process (paho, a window of unacked
publishes per device, so paho never hits its 65,535 limit). In one run:

  baseline   the same publishers into the same broker, one bare paho subscriber
             (QoS 1, does nothing): messages/s it receives
  e2e        readings/s stored in InfluxDB (first publish -> last point visible)
  latency    at a fixed offered rate (default 2,000/s): publish -> visible in InfluxDB,
             p50/p95/p99 (InfluxDB polled every 50 ms: that is the resolution)

Run by hand, with the machine otherwise idle (`scripts/services.sh up` first):
  .venv/bin/python bench/ingest.py [--readings 40000] [--devices 20] [--rate 2000]
The last line is `RESULT e2e_per_s=<n> baseline_per_s=<n> ratio=<r> p99_ms=<n>`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

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

WINDOW = 200  # unacked publishes per device


def progress(text: str) -> None:
    print(f"\r  {text:<70}", end="", flush=True)


# ---- publishers (a process of their own) ------------------------------------------


def _publisher_process(host, port, accounts, total, rate, seq_start, done_queue):
    """Publish `total` readings spread over the accounts; rate 0 = as fast as acked."""
    clients = []
    for account in accounts:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=account["client_id"],
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        client.username_pw_set(account["username"], account["password"])
        client.max_inflight_messages_set(WINDOW)
        client.max_queued_messages_set(0)
        slots = threading.BoundedSemaphore(WINDOW)
        client.on_publish = lambda c, u, mid, rc, p, slots=slots: slots.release()
        client.connect(host, port)
        client.loop_start()
        clients.append((client, slots, f"devices/{account['client_id']}/telemetry"))
    time.sleep(0.5)
    started = time.time()
    interval = 1.0 / rate if rate else 0.0
    last_ts: dict[str, int] = {}
    for n in range(total):
        client, slots, topic = clients[n % len(clients)]
        if interval:
            delay = started + n * interval - time.time()
            if delay > 0:
                time.sleep(delay)
        slots.acquire()
        # ts = publish time, kept strictly increasing per device (the series key).
        now_ms = max(int(time.time() * 1000), last_ts.get(topic, 0) + 1)
        last_ts[topic] = now_ms
        body = json.dumps(
            {
                "ts": now_ms,
                "seq": seq_start + n,
                "boot": 1,
                "values": {"temperature": 21.5, "humidity": 40.0},
            }
        )
        client.publish(topic, body, qos=1)
    for client, slots, _ in clients:
        for _ in range(WINDOW):
            slots.acquire()
        client.disconnect()
        client.loop_stop()
    done_queue.put((started, time.time()))


def publish(host, port, accounts, total, rate=0, seq_start=0) -> tuple[float, float]:
    queue = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=_publisher_process, args=(host, port, accounts, total, rate, seq_start, queue)
    )
    process.start()
    return process, queue


# ---- the measurements ---------------------------------------------------------------


def baseline(host, port, backend, accounts, total) -> float:
    received = 0
    first = last = None
    lock = threading.Lock()

    def on_message(client, userdata, message):
        nonlocal received, first, last
        with lock:
            received += 1
            last = time.time()
            first = first or last

    subscriber = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="bench-baseline", protocol=mqtt.MQTTv311
    )
    subscriber.username_pw_set(*backend)
    subscriber.on_message = on_message
    subscriber.connect(host, port)
    subscriber.subscribe("devices/+/telemetry", qos=1)
    subscriber.loop_start()
    time.sleep(0.5)
    process, queue = publish(host, port, accounts, total)
    started, _ = queue.get()
    process.join()
    deadline = time.time() + 120
    while received < total and time.time() < deadline:
        time.sleep(0.1)
        if last and time.time() - last > 15:
            break  # nothing for 15 s: the rest is not coming
    if received < total:
        print(f"\n  baseline subscriber got {received} of {total} (the broker lost the rest)")
    subscriber.disconnect()
    subscriber.loop_stop()
    return received / (last - started)


def stored_count(influx, database, since_ms) -> int:
    response = httpx.get(
        f"{influx}/query",
        params={
            "db": database,
            "epoch": "ms",
            "q": f'SELECT count("@received") FROM telemetry WHERE time >= {since_ms}ms',
        },
        timeout=30,
    )
    series = response.json()["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def end_to_end(host, port, accounts, total, influx, database) -> float:
    since = int(time.time() * 1000) - 1000
    process, queue = publish(host, port, accounts, total, seq_start=10**6)
    started, _ = queue.get()
    process.join()

    def done():
        count = stored_count(influx, database, since)
        progress(f"e2e: {count}/{total} stored")
        return count >= total

    wait_for(done, 300, "every reading stored", interval=0.1)
    finished = time.time()
    print()
    return total / (finished - started)


def latency(host, port, accounts, rate, seconds, influx, database) -> list[float]:
    total = int(rate * seconds)
    since = int(time.time() * 1000) + 500
    process, queue = publish(host, port, accounts, total, rate=rate, seq_start=10**7)
    samples: list[float] = []
    to_ingestor: list[float] = []
    seen: set[tuple[str, int]] = set()
    cursor = since
    deadline = time.time() + seconds + 60
    while len(seen) < total and time.time() < deadline:
        # Points of different devices land out of ts order: look 1 s back, count once.
        response = httpx.get(
            f"{influx}/query",
            params={
                "db": database,
                "epoch": "ms",
                "q": f'SELECT "@received" FROM telemetry WHERE time > {cursor - 1000}ms '
                'GROUP BY "device_id"',
            },
            timeout=30,
        )
        now_ms = time.time() * 1000
        for series in response.json()["results"][0].get("series", []):
            device = series["tags"]["device_id"]
            for ts, received in series["values"]:
                if ts > since and (device, ts) not in seen:
                    seen.add((device, ts))
                    samples.append(now_ms - ts)
                    to_ingestor.append(received - ts)
                    cursor = max(cursor, ts)
        progress(f"latency: {len(seen)}/{total} stored")
        time.sleep(0.05)
    queue.get()
    process.join()
    print()
    print(
        f"  (of which publish -> ingestor stamp: p50 {percentile(to_ingestor, 0.5):.0f} ms, "
        f"p99 {percentile(to_ingestor, 0.99):.0f} ms)"
    )
    return samples


def percentile(samples, q) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def embedded(args) -> int:
    """The embedded defaults in one process (amqtt + capture plugin + local queue +
    SQLite series): throughput only, against a bare subscriber on the same broker."""
    from fieldline_backend.infra.broker import backend_credentials
    from fieldline_backend.infra.timeseries.sqlite import SQLiteStore

    work = Path(tempfile.mkdtemp(prefix="fl-bench-embedded-"))
    settings = Settings(
        data_dir=work / "data",
        http_port=free_port(),
        mqtt_port=free_port(),
        internal_token=secrets.token_urlsafe(24),
        storage_batch_seconds=0.05,
        storage_batch_size=2000,
    )
    (work / "data").mkdir(parents=True)
    with running_stack(settings, ("mqtt_auth", "ingestor", "storage")) as stack:
        accounts = []
        with stack.internal_client() as http:
            for i in range(args.devices):
                answer = http.post(
                    "/internal/mqtt-accounts",
                    json={
                        "device_id": f"dev-bench{i:04d}",
                        "owner_id": "bench",
                        "name": f"bench {i}",
                        "metadata": {},
                    },
                )
                answer.raise_for_status()
                accounts.append(answer.json())
        host, port = "127.0.0.1", settings.mqtt_port
        total = args.readings
        print(f"embedded: {args.devices} devices, {total} readings, QoS 1")
        base_rate = baseline(host, port, backend_credentials(settings), accounts, total)
        print(f"\r  baseline  {base_rate:9.0f} msg/s received by a bare subscriber")
        store = SQLiteStore(work / "data" / "timeseries.db")
        ids = [a["client_id"] for a in accounts]
        before = sum(len(store.marks(d, 0, 2**53)) for d in ids)
        process, queue = publish(host, port, accounts, total, seq_start=10**6)
        started, _ = queue.get()
        process.join()
        wait_for(
            lambda: sum(len(store.marks(d, 0, 2**53)) for d in ids) - before >= total,
            600,
            "every reading stored",
            interval=0.5,
        )
        rate = total / (time.time() - started)
        print(f"  e2e       {rate:9.0f} readings/s stored in SQLite")
        print(
            f"RESULT e2e_per_s={rate:.0f} baseline_per_s={base_rate:.0f} "
            f"ratio={rate / base_rate:.2f} p99_ms=nan"
        )
        store.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=40_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rate", type=int, default=2000, help="offered rate for latency")
    parser.add_argument("--seconds", type=int, default=10, help="latency run length")
    parser.add_argument("--embedded", action="store_true", help="the embedded defaults")
    args = parser.parse_args()
    if args.embedded:
        return embedded(args)

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
    processes = []
    try:
        with running_stack(settings, ("mqtt_auth",)) as stack:
            accounts = []
            with stack.internal_client() as http:
                for i in range(args.devices):
                    answer = http.post(
                        "/internal/mqtt-accounts",
                        json={
                            "device_id": f"dev-bench{i:04d}{secrets.token_hex(2)}",
                            "owner_id": "bench",
                            "name": f"bench {i}",
                            "metadata": {"site": "lab"},
                        },
                    )
                    answer.raise_for_status()
                    accounts.append(answer.json())
            host, port = "127.0.0.1", mosquitto.port
            print(f"{args.devices} devices, {args.readings} readings, QoS 1, window {WINDOW}")

            progress("baseline: bare paho subscriber")
            base_rate = baseline(host, port, backend, accounts, args.readings)
            print(f"\r  baseline  {base_rate:9.0f} msg/s received by a bare subscriber")

            common = {
                "FIELDLINE_DATA_DIR": str(work / "data"),
                "FIELDLINE_INTERNAL_TOKEN": settings.internal_token,
                "FIELDLINE_MQTT_AUTH_URL": stack.base_url,
                "FIELDLINE_DATABASE_URL": pg,
                "FIELDLINE_AMQP_URL": vhost.url,
                "FIELDLINE_INFLUX_URL": influx,
                "FIELDLINE_INFLUX_DATABASE": database,
                "FIELDLINE_MQTT_URL": settings.mqtt_url,
                "FIELDLINE_STORAGE_BATCH_SIZE": "5000",
                "FIELDLINE_STORAGE_PREFETCH": "10000",
                "FIELDLINE_STORAGE_BATCH_SECONDS": "0.05",
                "FIELDLINE_LOG_LEVEL": "WARNING",
                "FIELDLINE_INGESTOR_CLIENT_ID": "bench-ingestor",
            }
            debug = {"FIELDLINE_LOG_LEVEL": os.environ.get("BENCH_STORAGE_LOG", "WARNING")}
            for service in ("ingestor", "storage"):
                env = {**common, **(debug if service == "storage" else {})}
                processes.append(ServiceProcess(service, env, work / f"{service}.log").start())
            print(f"  logs in {work}")
            time.sleep(1)
            e2e_rate = end_to_end(host, port, accounts, args.readings, influx, database)
            print(f"  e2e       {e2e_rate:9.0f} readings/s stored in InfluxDB")

            samples = latency(host, port, accounts, args.rate, args.seconds, influx, database)
            p50, p95, p99 = (percentile(samples, q) for q in (0.5, 0.95, 0.99))
            print(
                f"  latency at {args.rate}/s: p50 {p50:.0f} ms  p95 {p95:.0f} ms  "
                f"p99 {p99:.0f} ms  ({len(samples)} readings; mean "
                f"{statistics.fmean(samples):.0f} ms)"
            )
            ratio = e2e_rate / base_rate
            print(
                f"RESULT e2e_per_s={e2e_rate:.0f} baseline_per_s={base_rate:.0f} "
                f"ratio={ratio:.2f} p99_ms={p99:.0f}"
            )
    finally:
        for process in processes:
            process.stop()
        mosquitto.stop()
        drop_pg_database(pg)
        vhost.delete()
        influx_statement(influx, f'DROP DATABASE "{database}"')
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FIELDLINE_LOG_LEVEL", "WARNING")
    sys.exit(main())
