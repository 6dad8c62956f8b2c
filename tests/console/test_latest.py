"""The latest-values read the console learns a device's fields from: the same answer
from both time-series adapters, and through the public API only for the owner."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from fieldline_backend.infra.timeseries import BOOT_FIELD, RECEIVED_FIELD, SEQ_FIELD, Point
from fieldline_backend.infra.timeseries.influx import InfluxStore
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request, tmp_path):
    if request.param == "sqlite":
        adapter = SQLiteStore(tmp_path / "timeseries.db")
        adapter.ensure_schema()
        yield adapter
        adapter.close()
        return
    influx_url = request.getfixturevalue("influx_url")
    database = f"latest_{secrets.token_hex(4)}"
    adapter = InfluxStore(influx_url, database)
    adapter.ensure_schema()
    yield adapter
    adapter.close()
    httpx.post(f"{influx_url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)


def test_latest_value_of_each_field_without_bookkeeping(store):
    now = int(time.time() * 1000)
    marks = {RECEIVED_FIELD: now, SEQ_FIELD: 1, BOOT_FIELD: 1}
    store.write(
        [
            Point("dev-a", now - 9000, {"temperature": 20.5, "door": True, **marks}),
            Point("dev-a", now - 5000, {"temperature": 21.5, **marks}),
            Point("dev-a", now - 100_000, {"humidity": 40.0, **marks}),
            Point("dev-b", now - 1000, {"temperature": 99.0, "pressure": 1.0, **marks}),
        ]
    )
    assert store.latest("dev-a", now - 60_000) == {
        "door": (now - 9000, True),
        "temperature": (now - 5000, 21.5),
    }
    assert set(store.latest("dev-a", now - 200_000)) == {"door", "temperature", "humidity"}
    assert store.latest("dev-c", now - 200_000) == {}


def test_latest_through_the_api_is_owner_scoped(console_stack):
    ada, bob = console_stack.ada, console_stack.bob
    greenhouse = ada.devices["Greenhouse 1"]
    answer = ada.api.get(f"/api/v1/devices/{greenhouse['id']}/latest")
    assert answer.status_code == 200
    fields = answer.json()["fields"]
    assert {"temperature", "door"} <= set(fields) and not any(n.startswith("@") for n in fields)
    assert bob.api.get(f"/api/v1/devices/{greenhouse['id']}/latest").status_code == 404
    bad = ada.api.get(f"/api/v1/devices/{greenhouse['id']}/latest", params={"start": "soon"})
    assert bad.status_code == 400 and "not a time" in bad.json()["detail"]
