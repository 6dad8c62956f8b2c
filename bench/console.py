"""Console numbers, in a real browser: the device page with a week of 1-minute data
(`--only page`), and the devices list of a 300-device fleet (`--only list`).

A Fieldline process (every service; SQLite series store, or InfluxDB with --influx)
holds one device with a week of readings every minute (10,080 readings, two fields:
temperature and a door switch), written straight into the store through its port (the
pipeline is measured by bench/ingest.py). Debian's Chromium (Playwright, headless,
1280x900) signs in and opens /devices/<id>?range=7d, `--runs` times:

  first paint    first-contentful-paint of the page (server-drawn SVG charts at 360 px)
  live redraw    until the script's first refresh at the chart's real width landed
  bytes          transferSize of everything the page loaded (document, css, js,
                 the live fragment), as the browser counts it (headers included; the
                 style sheet and script come from the cache after the login page)

Baseline in the same run: what a client-side chart would fetch instead, the raw week
of both fields from the query API (GET .../telemetry?start=-7d, no aggregation): its
time and bytes.

The devices list: `--devices` (300) devices, each with an hour of 1-minute readings
(written through the port), one browser signed in:

  list load      /devices opened until the load event (the server renders every row:
                 one GET /api/v1/fleet), median of --runs
  live poll      GET /devices/live, the fragment the page swaps in every 10 s
  baseline       the same rows the way the list was built before GET /api/v1/fleet:
                 1 + 3 x devices API calls (list; status, latest, sparkline each),
                 8 at a time, in the same run

  .venv/bin/python bench/console.py [--only page|list] [--runs 5] [--devices 300] [--influx]
The last line is `RESULT first_paint_ms=<median> ... list_load_ms=<median> ...`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from fieldline_backend.common.settings import Settings  # noqa: E402
from fieldline_backend.gateway.users import create_user_in  # noqa: E402
from fieldline_backend.infra.timeseries import Marks, Point, open_timeseries  # noqa: E402
from tests.support.servers import free_port, service_env  # noqa: E402
from tests.support.stack import running_stack  # noqa: E402

MINUTE = 60_000
WEEK_MINUTES = 7 * 24 * 60


def say(text: str) -> None:
    print(text, flush=True)


def fill_week(store, device_id: str, now_ms: int) -> None:
    points = []
    for seq, back in enumerate(range(WEEK_MINUTES, 0, -1)):
        ts = now_ms - back * MINUTE
        values = {"temperature": 20 + (seq % 600) / 60, "door": seq % 90 < 10}
        points.append(Point(device_id, ts, values, {}, Marks(received=ts, seq=seq, boot=1)))
    for i in range(0, len(points), 2000):
        store.write(points[i : i + 2000])
        say(f"  wrote {min(i + 2000, len(points))}/{len(points)} readings")


def page_bytes(page) -> int:
    return int(
        page.evaluate(
            """() => performance.getEntriesByType('navigation')
                 .concat(performance.getEntriesByType('resource'))
                 .reduce((sum, e) => sum + (e.transferSize || 0), 0)"""
        )
    )


def fill_hour(store, device_ids: list[str], now_ms: int) -> None:
    points = [
        Point(d, now_ms - back * MINUTE, {"temperature": 20 + back / 10, "humidity": 50.0},
              {}, Marks(received=now_ms - back * MINUTE, seq=60 - back, boot=1))
        for d in device_ids
        for back in range(60, 0, -1)
    ]  # fmt: skip
    for i in range(0, len(points), 5000):
        store.write(points[i : i + 5000])
    say(f"  wrote {len(points)} readings ({len(device_ids)} devices x 60)")


def signed_in_page(browser, base_url: str, password: str):
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", "bench")
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^[^?]*/devices$"), timeout=120_000)
    return page


def old_list_rows(api, devices: list[dict]) -> None:
    """What the list cost before GET /api/v1/fleet: 3 calls per device, 8 at a time."""

    def row(device):
        base = f"/api/v1/devices/{device['id']}"
        api.get(f"{base}/status").raise_for_status()
        api.get(f"{base}/latest").raise_for_status()
        api.get(
            f"{base}/telemetry",
            params={"fields": "humidity", "start": "-1h", "every": "31s", "agg": "mean"},
        ).raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(row, devices))


def bench_list(running, api, password: str, args) -> dict:
    store = open_timeseries(running.settings)
    store.ensure_schema()
    devices = []
    for i in range(args.devices):
        answer = api.post("/api/v1/devices", json={"name": f"bench {i:03d}", "metadata": {}})
        devices.append(answer.json())
        if (i + 1) % 100 == 0:
            say(f"  registered {i + 1}/{args.devices} devices")
    fill_hour(store, [d["id"] for d in devices], int(time.time() * 1000))

    old = []
    for _ in range(args.runs):
        started = time.perf_counter()
        api.get("/api/v1/devices").raise_for_status()
        old_list_rows(api, devices)
        old.append((time.perf_counter() - started) * 1000)
    say(f"baseline 1 + 3 x {args.devices} API calls: median {statistics.median(old):.0f} ms")

    loads, polls = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = signed_in_page(browser, running.base_url, password)
        for run in range(args.runs):
            started = time.perf_counter()
            page.goto("/devices", wait_until="load")
            loads.append((time.perf_counter() - started) * 1000)
            rows = page.locator("tr[data-device]").count()
            started = time.perf_counter()
            live = page.request.get("/devices/live")
            polls.append((time.perf_counter() - started) * 1000)
            assert live.ok and rows >= args.devices, (live.status, rows)
            say(f"  run {run + 1}: list load {loads[-1]:.0f} ms ({rows} rows), "
                f"live poll {polls[-1]:.0f} ms, {len(live.body())} bytes")  # fmt: skip
        browser.close()
    return {
        "list_devices": args.devices,
        "list_load_ms": f"{statistics.median(loads):.0f}",
        "live_poll_ms": f"{statistics.median(polls):.0f}",
        "old_list_ms": f"{statistics.median(old):.0f}",
    }


def bench_page(running, api, password: str, args) -> dict:
    device = api.post("/api/v1/devices", json={"name": "bench", "metadata": {}}).json()
    store = open_timeseries(running.settings)
    store.ensure_schema()
    now = int(time.time() * 1000)
    say(f"filling a week of 1-minute readings for {device['id']}")
    fill_week(store, device["id"], now)

    # Baseline: the raw week, as a client-side chart library would fetch it.
    raw_times, raw_bytes = [], 0
    for _ in range(args.runs):
        started = time.perf_counter()
        raw = api.get(
            f"/api/v1/devices/{device['id']}/telemetry",
            params={"fields": "temperature,door", "start": "-7d"},
        )
        raw_times.append((time.perf_counter() - started) * 1000)
        raw_bytes = len(raw.content)
    points = sum(len(v) for v in raw.json()["fields"].values())
    say(f"baseline raw week: {points} points, {raw_bytes} bytes, "
        f"median {statistics.median(raw_times):.0f} ms")  # fmt: skip

    paints, redraws, sizes, plotted = [], [], [], 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = signed_in_page(browser, running.base_url, password)
        for run in range(args.runs):
            started = time.perf_counter()
            page.goto(f"/devices/{device['id']}?range=7d", wait_until="load")
            page.wait_for_selector("#live[data-updated]", timeout=60_000)
            redraw = (time.perf_counter() - started) * 1000
            paint = page.evaluate(
                "() => (performance.getEntriesByName('first-contentful-paint')[0]"
                " || {startTime: NaN}).startTime"
            )
            size = page_bytes(page)
            plotted = int(
                page.locator("figure.chart[data-field=temperature]").get_attribute("data-points")
            )
            if run == 0:
                for name, entry_bytes in page.evaluate(
                    """() => performance.getEntriesByType('navigation')
                         .concat(performance.getEntriesByType('resource'))
                         .map(e => [e.name.replace(location.origin, ''), e.transferSize])"""
                ):
                    say(f"    {entry_bytes:>7} bytes  {name}")
            paints.append(paint)
            redraws.append(redraw)
            sizes.append(size)
            say(f"  run {run + 1}: first paint {paint:.0f} ms, live redraw {redraw:.0f} ms, "
                f"{size} bytes, {plotted} temperature points")  # fmt: skip
        browser.close()
    return {
        "first_paint_ms": f"{statistics.median(paints):.0f}",
        "live_redraw_ms": f"{statistics.median(redraws):.0f}",
        "page_bytes": f"{statistics.median(sizes):.0f}",
        "points_per_chart": plotted,
        "raw_ms": f"{statistics.median(raw_times):.0f}",
        "raw_bytes": raw_bytes,
        "raw_points": points,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["page", "list"], help="one of the two (default both)")
    parser.add_argument("--runs", type=int, default=5, help="page loads to time (default 5)")
    parser.add_argument("--devices", type=int, default=300, help="devices in the list bench")
    parser.add_argument("--influx", action="store_true", help="InfluxDB from services.sh")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="fieldline-bench-console-"))
    overrides: dict = {}
    if args.influx:
        overrides = {
            "influx_url": service_env()["FIELDLINE_TEST_INFLUX_URL"],
            "influx_database": f"bench_console_{secrets.token_hex(4)}",
        }
    settings = Settings(
        data_dir=data_dir, http_port=0, mqtt_port=free_port(), monitor_interval=60, **overrides
    )
    say(f"store: {'InfluxDB' if args.influx else 'SQLite'}; data dir {data_dir}")
    with running_stack(settings) as running:
        password = secrets.token_urlsafe(12)
        create_user_in(running.settings, "bench", password)
        api = running.client()
        token = api.post(
            "/api/v1/auth/token", data={"username": "bench", "password": password}
        ).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        results: dict = {}
        if args.only in (None, "page"):
            results.update(bench_page(running, api, password, args))
        if args.only in (None, "list"):
            results.update(bench_list(running, api, password, args))
        api.close()
    if args.influx:
        httpx.post(
            f"{overrides['influx_url']}/query",
            data={"q": f'DROP DATABASE "{overrides["influx_database"]}"'},
        )
    say("RESULT " + " ".join(f"{key}={value}" for key, value in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
