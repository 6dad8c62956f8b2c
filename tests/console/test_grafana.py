"""deploy/grafana: the provisioned data source, the dashboard provider and the fleet
dashboard agree with each other and with the compose file, and every query of the
dashboard runs on a real InfluxDB holding readings written by the storage adapter."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

import httpx
import pytest
import yaml

from fieldline_backend.infra.timeseries import (
    DROPPED_FIELD,
    MEASUREMENT,
    RECEIVED_FIELD,
    STATUS_MEASUREMENT,
    Marks,
    Point,
)
from fieldline_backend.infra.timeseries.influx import InfluxStore

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fleet.json"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _queries(dashboard: dict) -> list[str]:
    found = [v["query"] for v in dashboard["templating"]["list"]]
    for panel in dashboard["panels"]:
        found += [t["query"] for t in panel.get("targets", [])]
    return found


def test_data_source_and_provider_fit_the_dashboard_and_compose():
    source = _yaml(GRAFANA / "provisioning/datasources/influxdb.yaml")["datasources"][0]
    assert source["type"] == "influxdb" and source["jsonData"]["dbName"]
    provider = _yaml(GRAFANA / "provisioning/dashboards/fieldline.yaml")["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = _dashboard()
    used = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    used |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
    assert used == {source["uid"]}
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["owner", "device", "field"]
    assert any(p.get("repeat") == "device" for p in dashboard["panels"])
    compose = GRAFANA.parent / "compose.yaml"
    if compose.exists():  # written by the deployment work; the mounts must match
        grafana = _yaml(compose)["services"]["grafana"]
        mounts = " ".join(grafana["volumes"])
        assert "./grafana/provisioning:/etc/grafana/provisioning" in mounts
        assert "./grafana/dashboards:/var/lib/grafana/dashboards" in mounts
        env = grafana.get("environment", {})
        for variable in re.findall(r"\$\{(\w+)\}", (GRAFANA / "provisioning").joinpath(
            "datasources/influxdb.yaml").read_text()):  # fmt: skip
            assert variable in env, f"compose does not give Grafana {variable}"


def test_dashboard_names_the_schema_the_store_writes():
    text = DASHBOARD.read_text()
    for name in (MEASUREMENT, STATUS_MEASUREMENT, RECEIVED_FIELD, DROPPED_FIELD):
        assert f'\\"{name}\\"' in text, name


def _substitute(query: str, device: str, owner: str) -> str:
    return (
        query.replace("$timeFilter", "time > now() - 2h")
        .replace("$__interval", "1m")
        .replace("/^$owner$/", f"/^({owner})$/")
        .replace("/^$device$/", f"/^({device})$/")
        .replace("'$device'", f"'{device}'")
        .replace("/^$field$/", "/^(temperature|door)$/")
    )


def test_every_dashboard_query_runs_on_influxdb(influx_url):
    database = f"grafana_{secrets.token_hex(4)}"
    store = InfluxStore(influx_url, database)
    try:
        store.ensure_schema()
        now = int(time.time() * 1000)
        tags = {"owner": "7", "name": "Greenhouse"}
        store.write(
            [
                Point(
                    "dev-grafana1",
                    now - i * 60_000,
                    {"temperature": 20.0 + i, "door": i % 2 == 0},
                    tags,
                    Marks(received=now, dropped=0),
                )  # fmt: skip
                for i in range(30)
            ]
        )
        store.write_status("dev-grafana1", True, now)
        for query in _queries(_dashboard()):
            text = _substitute(query, "dev-grafana1", "7")
            left = re.findall(r"\$(?!/)\w+", text)  # a variable left over (not a regex end)
            assert not left, (left, text)
            answer = httpx.get(
                f"{influx_url}/query", params={"db": database, "q": text}, timeout=30
            ).json()
            result = answer["results"][0]
            assert "error" not in result, (text, result)
            assert result.get("series"), f"no data for: {text}"
    finally:
        httpx.post(f"{influx_url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)
        store.close()


@pytest.mark.parametrize("path", sorted(GRAFANA.rglob("*.yaml")) + [DASHBOARD])
def test_files_parse(path):
    assert (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text())
