"""Issue 13, item 7: all-history raw queries against a real `fieldline up` on the
embedded defaults keep its memory bounded and /healthz answering.

The history goes straight into the process's SQLite time-series file through the
adapter (fast); the queries go through the public API like any client's. CI stores
FIELDLINE_TEST_QUERY_POINTS (default 200,000); the issue's case is 2,000,000, run by
hand: FIELDLINE_TEST_QUERY_POINTS=2000000 pytest tests/hostile_query -s
With FIELDLINE_TEST_QUERY_STORE=influxdb the process stores in a database of its own on
the test InfluxDB instead (by hand: the write takes a while).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import httpx

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.users import create_user_in
from fieldline_backend.infra.timeseries import Point, open_timeseries
from tests.demo.process import FIELDLINE, DemoProcess, clean_env
from tests.support.servers import free_port, wait_for

POINTS = int(os.environ.get("FIELDLINE_TEST_QUERY_POINTS", "200000"))
STORE = os.environ.get("FIELDLINE_TEST_QUERY_STORE", "embedded")
PARALLEL = 4
MAX_RSS_MB = 300
CAP = 10_000  # FIELDLINE_QUERY_MAX_POINTS's default
BASE = 1_700_000_000_000


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has held since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def store_history(settings: Settings, device_id: str, count: int) -> None:
    store = open_timeseries(settings)
    try:
        store.ensure_schema()
        batch = 50_000
        for i in range(0, count, batch):
            store.write(
                [
                    Point(device_id, BASE + j * 1000, {"t": float(j)}, {"owner": "x"})
                    for j in range(i, min(i + batch, count))
                ]
            )
    finally:
        store.close()


def test_parallel_all_history_raw_queries_keep_fieldline_up_small_and_healthy(tmp_path, request):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    http_port = free_port()
    password = secrets.token_urlsafe(12)
    stores = {}
    if STORE == "influxdb":
        influx_url = request.getfixturevalue("influx_url")
        stores = {"influx_url": influx_url, "influx_database": f"flq_{secrets.token_hex(4)}"}
        request.addfinalizer(
            lambda: httpx.post(
                f"{influx_url}/query", data={"q": f'DROP DATABASE "{stores["influx_database"]}"'}
            )
        )
    settings = Settings(data_dir=data_dir, **stores)
    create_user_in(settings, "ada", password)
    up = DemoProcess(
        [*FIELDLINE, "up", "--data-dir", str(data_dir), "--http-port", str(http_port),
         "--mqtt-port", str(free_port())],
        env=clean_env(
            FIELDLINE_LOG_LEVEL="WARNING",
            **{f"FIELDLINE_{key.upper()}": value for key, value in stores.items()},
        ),
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: _healthy(base_url), 60, "fieldline up to answer /healthz")
        with httpx.Client(base_url=base_url, timeout=120) as http:
            token = http.post(
                "/api/v1/auth/token", data={"username": "ada", "password": password}
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            device = http.post("/api/v1/devices", json={"name": "chatty", "metadata": {}})
            assert device.status_code == 201, device.text
            device_id = device.json()["id"]
            started = time.monotonic()
            store_history(settings, device_id, POINTS)
            print(f"\n{POINTS} points stored in {STORE} in {time.monotonic() - started:.1f} s")
            before = peak_rss_mb(up.process.pid)

            answers: list = []
            health: list[float] = []

            def query() -> None:
                with httpx.Client(base_url=base_url, timeout=120, headers=http.headers) as c:
                    start = time.monotonic()
                    answer = c.get(
                        f"/api/v1/devices/{device_id}/telemetry",
                        params={"fields": "t", "start": 0, "stop": "now"},
                    )
                    answers.append((answer, time.monotonic() - start))

            threads = [threading.Thread(target=query) for _ in range(PARALLEL)]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                asked = time.monotonic()
                ok = _healthy(base_url, timeout=10)
                health.append(time.monotonic() - asked if ok else float("inf"))
                time.sleep(0.1)
            for thread in threads:
                thread.join()
            peak = peak_rss_mb(up.process.pid)
            print(
                f"peak RSS {before:.0f} MB before the queries, {peak:.0f} MB after; "
                f"answers {[f'{len(a.content) / 1e6:.2f} MB in {s:.2f} s' for a, s in answers]}; "
                f"slowest /healthz {max(health, default=0):.2f} s"
            )

            for answer, _seconds in answers:
                assert answer.status_code == 200, answer.text[:300]
                body = answer.json()
                held = len(body["fields"]["t"])
                assert held == min(CAP, POINTS), f"{held} points in one answer; cap {CAP}"
                assert body["truncated"] is (POINTS > CAP), body["next_start"]
            assert peak < MAX_RSS_MB, f"peak RSS {peak:.0f} MB; expected under {MAX_RSS_MB} MB"
            assert max(health, default=0) < 2.0, f"/healthz took up to {max(health):.2f} s"
            assert _healthy(base_url)
    finally:
        code, _ = up.interrupt()
        assert up.process.poll() is not None


def _healthy(base_url: str, timeout: float = 5) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
