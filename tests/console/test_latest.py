"""The latest-values read the console learns a device's fields from, through the public
API only for the owner (both adapters answer alike: tests/pipeline/test_timeseries_contract.py)."""

from __future__ import annotations


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
