"""GET /api/v1/fleet, the devices list's one call per poll: the same facts as the
per-device routes, owner-scoped, on both stacks; and the console's list makes one API call
whatever the number of devices."""

from __future__ import annotations

import pytest

from fieldline_backend.console import api as console_api
from tests.console.test_http import sign_in


def test_fleet_rows_say_what_the_per_device_routes_say(console_stack):
    ada = console_stack.ada
    rows = ada.api.get("/api/v1/fleet").json()
    assert [r["device"]["name"] for r in rows] == ["Greenhouse 1", "Weather mast"]
    for row in rows:
        device_id = row["device"]["id"]
        status = ada.api.get(f"/api/v1/devices/{device_id}/status").json()
        latest = ada.api.get(f"/api/v1/devices/{device_id}/latest").json()
        assert row["status"] == status["status"]
        assert row["last_seen"] == status["last_seen"]
        hour = status["completeness"]["last_hour"]
        assert row["completeness_last_hour"]["ratio"] == hour["ratio"]
        assert row["readings_last_hour"] == status["readings_last_hour"]
        assert row["latest"] == latest["fields"]
    greenhouse, mast = rows
    assert greenhouse["status"] == "online" and mast["status"] == "offline"
    # The greenhouse sent a reading a minute for the last day: a line of hour means.
    assert greenhouse["main_field"] == "temperature"
    assert 50 <= len(greenhouse["spark"]) <= 120, greenhouse["spark"]
    assert all(isinstance(v, float | int) for _ts, v in greenhouse["spark"])
    # The mast went silent a day ago: values, no line.
    assert mast["main_field"] == "temperature" and mast["spark"] == []


def test_fleet_is_owner_scoped_and_filtered_by_tag(console_stack):
    assert [r["device"]["name"] for r in console_stack.bob.api.get("/api/v1/fleet").json()] == [
        "Bob's shed"
    ]
    east = console_stack.ada.api.get("/api/v1/fleet", params={"tag": "room:east"}).json()
    assert [r["device"]["name"] for r in east] == ["Greenhouse 1"]
    answer = console_stack.ada.api.get("/api/v1/fleet", params={"spark_points": 1})
    assert answer.status_code == 422, answer.text


@pytest.fixture
def api_calls(monkeypatch) -> list[str]:
    """The paths of the console's in-process API calls (the stack runs in this process)."""
    calls: list[str] = []
    original = console_api.Api.request

    async def counted(self, method, path, **kwargs):
        calls.append(path)
        return await original(self, method, path, **kwargs)

    monkeypatch.setattr(console_api.Api, "request", counted)
    return calls


def test_the_devices_list_makes_one_api_call_per_poll(console_stack, api_calls):
    client = sign_in(console_stack, console_stack.ada)
    api_calls.clear()
    page = client.get("/devices/live")
    assert page.status_code == 200 and "Greenhouse 1" in page.text
    assert api_calls == ["/fleet"], api_calls
