"""Issue 3, "Done when" 6 (both stacks): the public telemetry and status routes read
back what was written, raw, aggregated and as CSV; another user's device is 404."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import UTC, datetime

import httpx

from fieldline_backend.console.api import Api
from fieldline_backend.console.pages_devices import live_view
from fieldline_backend.console.ranges import TimeRange
from fieldline_backend.infra.timeseries import Point
from tests.pipeline.conftest import ALL
from tests.pipeline.support import reading
from tests.support.servers import wait_for


def test_query_api_raw_aggregates_csv_and_owner_scope(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as owner:
        device = pipeline.device(owner, "kitchen", {"room": "kitchen"})
        base = 1_764_000_000_000  # window-aligned: a multiple of 10 s
        temps = [float(v) for v in (20, 22, 21, 25, 19, 18, 30, 31, 29, 28)]
        device.publish_all(
            [
                reading(i, ts=base + i * 2000, temperature=t, door=i % 3 == 0)
                for i, t in enumerate(temps)
            ]
        )
        pipeline.wait_stored({device.device_id: len(temps)})
        url = f"/api/v1/devices/{device.device_id}/telemetry"

        raw = owner.get(
            url, params={"fields": "temperature,door", "start": base, "stop": base + 20_000}
        )
        assert raw.status_code == 200, raw.text
        assert raw.json() == {
            "device_id": device.device_id,
            "fields": {
                "temperature": [[base + i * 2000, t] for i, t in enumerate(temps)],
                "door": [[base + i * 2000, i % 3 == 0] for i in range(len(temps))],
            },
            "limit": 10_000,
            "truncated": False,
            "next_start": None,
        }
        windows = [temps[:5], temps[5:]]
        expect = {
            "mean": [sum(w) / len(w) for w in windows],
            "min": [min(w) for w in windows],
            "max": [max(w) for w in windows],
            "last": [w[-1] for w in windows],
            "count": [len(w) for w in windows],
        }
        rfc_start = datetime.fromtimestamp(base / 1000, UTC).isoformat().replace("+00:00", "Z")
        for agg, values in expect.items():
            answer = owner.get(
                url,
                params={
                    "fields": "temperature",
                    "start": rfc_start,
                    "stop": base + 20_000,
                    "every": "10s",
                    "agg": agg,
                },
            )
            assert answer.status_code == 200, answer.text
            got = answer.json()["fields"]["temperature"]
            assert [ts for ts, _ in got] == [base, base + 10_000], agg
            assert [v for _, v in got] == values, agg

        # A relative window that holds none of these old readings.
        recent = owner.get(url, params={"fields": "temperature", "start": "-1h"})
        assert recent.json()["fields"] == {"temperature": []}

        as_csv = owner.get(
            url,
            params={"fields": "temperature,door", "start": base, "stop": base + 4001},
            headers={"Accept": "text/csv"},
        )
        assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(as_csv.text)))
        assert rows[0] == ["ts_ms", "time", "temperature", "door"]
        assert [r[0] for r in rows[1:]] == [str(base), str(base + 2000), str(base + 4000)]
        assert rows[1][2:] == ["20.0", "true"] and rows[2][2:] == ["22.0", "false"]

        for params in (
            {"fields": "temperature", "agg": "median"},
            {"fields": "temp erature"},
            {"fields": "temperature", "start": "yesterday"},
            {"fields": "temperature", "every": "10s"},
            {"fields": "temperature", "start": base + 10, "stop": base},
            {"fields": "door", "agg": "mean", "every": "1m", "start": base, "stop": base + 60_000},
        ):
            bad = owner.get(url, params=params)
            assert bad.status_code == 400, (params, bad.status_code, bad.text)
            assert bad.json()["detail"]

        with pipeline.signed_in() as stranger:
            for path in (url, f"/api/v1/devices/{device.device_id}/status"):
                answer = stranger.get(path, params={"fields": "temperature"})
                assert answer.status_code == 404, answer.text
        device.close()


def test_status_online_last_seen_and_completeness(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as owner:
        device = pipeline.device(owner, "garage")
        url = f"/api/v1/devices/{device.device_id}/status"
        assert owner.get(url).json()["status"] == "offline"

        device.publish(b"online", topic=f"devices/{device.client_id}/status").wait_for_publish(10)
        now = int(time.time() * 1000)
        seqs = [0, 1, 2, 5, 6, 7, 8, 9]  # 3 and 4 never arrive
        batch = [reading(s, boot=4, ts=now - 60_000 + s * 1000, t=1.0) for s in seqs]
        batch[-1]["dropped"] = 5  # the device reports 5 readings it could not keep
        day_old = reading(0, boot=3, ts=now - 3 * 3_600_000, t=1.0)
        day_later = reading(3, boot=3, ts=now - 3 * 3_600_000 + 1000, t=1.0)  # 1, 2 missing
        device.publish_all([batch, day_old, day_later])
        pipeline.wait_stored({device.device_id: len(seqs) + 2})
        reports = pipeline.kind == "embedded"  # see docs/pipeline.md: Mosquitto's ACL
        if reports:
            # The SDK's reports: dropped since boot 4 began, on devices/<id>/status/buffer.
            for count in (3, 7):
                device.publish(
                    json.dumps({"dropped": count, "boot": 4}).encode(),
                    topic=f"devices/{device.client_id}/status/buffer",
                ).wait_for_publish(10)

        expected_drops = 5 + (7 if reports else 0)
        status = wait_for(
            lambda: (
                (s := owner.get(url).json())["status"] == "online"
                and s["completeness"]["last_hour"]["device_dropped"] == expected_drops
                and s
            ),
            20,
            f"online, {expected_drops} dropped",
        )
        assert now - 5_000 <= status["last_seen"] <= int(time.time() * 1000) + 1000
        assert status["readings_last_hour"] == len(seqs)
        hour = status["completeness"]["last_hour"]
        assert (hour["received"], hour["missing"], hour["device_dropped"]) == (8, 2, expected_drops)
        day = status["completeness"]["last_day"]
        assert (day["received"], day["missing"], day["device_dropped"]) == (10, 4, expected_drops)

        device.publish(b"offline", topic=f"devices/{device.client_id}/status").wait_for_publish(10)
        wait_for(lambda: owner.get(url).json()["status"] == "offline", 20, "offline")
        device.close()


# ---- issue 13, item 7: a capped answer, the cursor to the rest, bounded sizes ----------


def test_a_long_history_comes_in_pages_of_the_cap_and_the_link_reads_it_all(start_pipeline):
    with start_pipeline(ALL) as pipeline, pipeline.signed_in() as owner:
        device_id = pipeline.register(owner, "chatty")["id"]
        base, count = 1_764_000_000_000, 25_000
        store = pipeline.store()
        try:  # straight into the store: the query path is what is under test
            for i in range(0, count, 5000):
                store.write(
                    [
                        Point(device_id, base + j, {"t": float(j), "on": j % 2 == 0}, {"o": "x"})
                        for j in range(i, i + 5000)
                    ]
                )
        finally:
            store.close()
        url = f"/api/v1/devices/{device_id}/telemetry"
        params = {"fields": "t,on", "start": base, "stop": "now"}

        first = owner.get(url, params=params)
        assert first.status_code == 200, first.text
        body = first.json()
        held = sum(len(points) for points in body["fields"].values())
        assert held == 10_000, f"the first page holds {held} values; expected the cap, 10000"
        assert (body["limit"], body["truncated"], body["next_start"]) == (10_000, True, base + 5000)
        assert first.headers["link"].endswith('>; rel="next"'), first.headers.get("link")

        got = {"t": [], "on": []}
        pages, answer = 0, first
        while True:
            pages += 1
            for name, points in answer.json()["fields"].items():
                got[name] += [tuple(p) for p in points]
            if "link" not in answer.headers:
                assert answer.json()["truncated"] is False
                break
            assert pages < 10, "the cursor does not end"
            answer = owner.get(answer.headers["link"].split(">")[0].lstrip("<"))
            assert answer.status_code == 200, answer.text
        assert pages == 5, f"{pages} pages of 50,000 values; expected 5"
        assert got == {
            "t": [(base + j, float(j)) for j in range(count)],
            "on": [(base + j, j % 2 == 0) for j in range(count)],
        }, "paging through must give every value once, in order"

        small = owner.get(url, params={**params, "limit": 3}).json()
        assert (sum(map(len, small["fields"].values())), small["next_start"]) == (2, base + 1)
        as_csv = owner.get(url, params={**params, "limit": 4}, headers={"Accept": "text/csv"})
        assert len(as_csv.text.splitlines()) == 3, as_csv.text  # header + 2 whole ms
        assert f"start={base + 2}" in as_csv.headers["link"], as_csv.headers.get("link")


def test_over_the_cap_422s_latest_bounded_and_the_console_reads_every_page(start_pipeline):
    with start_pipeline(ALL, query_max_points=20) as pipeline, pipeline.signed_in() as owner:
        device_id = pipeline.register(owner, "wide")["id"]
        now = int(time.time() * 1000)
        stamps = [now - 150_000, now - 90_000, now - 30_000, now - 1000]
        store = pipeline.store()
        try:
            store.write(
                [Point(device_id, ts, {f"f{i:02d}": 1.0 for i in range(25)}) for ts in stamps]
            )
        finally:
            store.close()
        url = f"/api/v1/devices/{device_id}/telemetry"
        many = ",".join(f"f{i:02d}" for i in range(25))
        for params, parameter in (
            ({"fields": "f00", "limit": 21}, "limit"),
            ({"fields": many}, "fields"),
            ({"fields": "f00,f01,f02", "limit": 2}, "fields"),
            ({"fields": "f00", "start": "-1h", "every": "1m", "agg": "mean"}, "every"),
        ):
            answer = owner.get(url, params=params)
            assert answer.status_code == 422, (params, answer.status_code, answer.text)
            detail = answer.json()["detail"]
            assert [d["loc"] for d in detail] == [["query", parameter]], (params, detail)
        ok = owner.get(url, params={"fields": "f00", "start": "-19m", "every": "1m", "agg": "max"})
        assert ok.status_code == 200, ok.text

        latest = owner.get(f"/api/v1/devices/{device_id}/latest").json()
        assert sorted(latest["fields"]) == [f"f{i:02d}" for i in range(20)], latest
        assert latest["truncated"] is True

        # The console's charts: 20 fields x 4 windows is 80 values, 4 pages of the cap.
        headers = {"Authorization": owner.headers["Authorization"]}
        view = asyncio.run(_live_view(pipeline.running.base_url, headers, device_id, now))
        every = view["every"]
        windows = len({ts // every for ts in stamps})
        counts = {chart["field"]: chart["chart"].count for chart in view["charts"]}
        assert counts == {f"f{i:02d}": windows for i in range(20)}, (every, counts)


async def _live_view(base_url: str, headers: dict, device_id: str, now: int) -> dict:
    span = TimeRange("custom", now - 180_000, now, "last 3 minutes")
    api = Api(httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30))
    try:
        return await live_view(api, {"id": device_id, "metadata": {}}, span, width=4)
    finally:
        await api.close()
