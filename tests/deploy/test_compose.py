"""Issue 8, "Done when" 1: deploy/compose.yaml validates with Debian's docker-compose 1.29
(no Docker engine needed), every Fieldline container it names is a `fieldline serve`
target, and every FIELDLINE_* variable it sets is one the code reads."""

from __future__ import annotations

import re

import pytest
import yaml

from fieldline_backend.common.settings import SERVICES
from tests.deploy.compose import (
    COMPOSE_FILE,
    DEPLOY,
    ENV_EXAMPLE,
    compose_config,
    fieldline_containers,
    mounts,
    resolved,
    settings_variables,
)

LONG_RUNNING_ENGINES = ("traefik", "postgres", "rabbitmq", "mosquitto", "influxdb")


def test_compose_file_validates_with_the_example_env_file():
    result = compose_config()
    assert result.returncode == 0, result.stderr
    assert set(LONG_RUNNING_ENGINES) | {"grafana", "migrate"} <= set(resolved()["services"])


def test_a_missing_secret_stops_compose_naming_it():
    result = compose_config(env_file=None)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/.env" in result.stderr, result.stderr


def test_every_variable_compose_interpolates_is_in_the_example_env_file():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used - example == set(), (
        f"compose.yaml uses {sorted(used - example)} not in .env.example"
    )


def test_each_fieldline_container_serves_one_service_and_every_service_has_one():
    served = {}
    for name, service in fieldline_containers().items():
        command = service["command"]
        if name == "migrate":
            assert command == ["migrate"]
            continue
        assert command[0] == "serve" and len(command) == 2, (name, command)
        assert command[1] in SERVICES, f"{name}: `fieldline serve {command[1]}` does not exist"
        assert re.fullmatch(rf"{command[1]}(-[0-9]+)?", name), f"container {name} runs {command[1]}"
        served[name] = command[1]
    assert set(served.values()) == set(SERVICES)
    assert set(SERVICES) <= set(served), "each service has a container named after it"


def test_every_ingestor_replica_has_a_fixed_client_id_of_its_own():
    ids = [
        service["environment"].get("FIELDLINE_INGESTOR_CLIENT_ID")
        for service in fieldline_containers().values()
        if service["command"] == ["serve", "ingestor"]
    ]
    assert len(ids) >= 2, "at least two ingestor replicas"
    assert None not in ids and len(set(ids)) == len(ids), ids


def test_every_fieldline_variable_compose_sets_is_one_the_code_reads():
    known = settings_variables()
    assert "FIELDLINE_DATABASE_URL" in known  # the derivation itself works
    unknown = {}
    for name, service in resolved()["services"].items():
        for variable in service.get("environment") or {}:
            if variable.startswith("FIELDLINE_") and variable not in known:
                unknown.setdefault(name, []).append(variable)
    assert unknown == {}, f"variables no Settings field reads: {unknown}"


def test_services_wait_for_the_one_shot_migration_and_have_health_checks():
    services = resolved()["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in [n for n in fieldline_containers() if n != "migrate"]:
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["restart"] == "unless-stopped", name
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
    for name in LONG_RUNNING_ENGINES:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_engines_keep_their_data_in_named_volumes():
    services = resolved()["services"]
    wanted = {
        "postgres": "/var/lib/postgresql/data",
        "rabbitmq": "/var/lib/rabbitmq",
        "influxdb": "/var/lib/influxdb",
        "mosquitto": "/mosquitto/data",
        "grafana": "/var/lib/grafana",
    }
    for name, target in wanted.items():
        mount = mounts(services[name])[target]
        assert mount["type"] == "volume", (name, mount)


def test_mqtt_auth_reaches_mosquittos_files_and_process():
    services = resolved()["services"]
    mqtt_auth, mosquitto = services["mqtt_auth"], services["mosquitto"]
    # SIGHUP needs the same PID namespace and the same user as the broker.
    assert mqtt_auth["pid"] == "service:mosquitto"
    assert mqtt_auth["user"].split(":")[0] == "1883"
    broker_mounts = mounts(mosquitto).values()
    shared = {
        v["source"]: v["target"]
        for v in mounts(mqtt_auth).values()
        if v["type"] == "volume" and any(m["source"] == v["source"] for m in broker_mounts)
    }
    assert shared, "mqtt_auth and mosquitto share no volume"
    ((auth_volume, mount),) = shared.items()
    conf = (DEPLOY / "mosquitto" / "compose.conf").read_text()
    env = mqtt_auth["environment"]
    for setting, directive in [
        ("FIELDLINE_MOSQUITTO_PASSWORD_FILE", "password_file"),
        ("FIELDLINE_MOSQUITTO_ACL_FILE", "acl_file"),
        ("FIELDLINE_MOSQUITTO_PID_FILE", "pid_file"),
    ]:
        assert env[setting].startswith(mount + "/"), (setting, env[setting], mount)
        assert re.search(rf"^{directive} {re.escape(env[setting])}$", conf, re.M), directive
    mosquitto_mount = next(m for m in broker_mounts if m["source"] == auth_volume)
    assert mosquitto_mount["target"] == mount, "the files must have the same path in both"


def test_traefik_terminates_tls_for_the_api_and_for_mqtt_on_8883():
    services = resolved()["services"]
    traefik = services["traefik"]
    command = " ".join(traefik["command"])
    assert "--entrypoints.mqtts.address=:8883" in command
    assert "--entrypoints.websecure.address=:443" in command
    assert any(p["target"] == 8883 for p in traefik["ports"])
    dynamic = yaml.safe_load((DEPLOY / "traefik" / "dynamic.yaml").read_text())
    api = dynamic["http"]["routers"]["api"]
    assert "PathPrefix(`/api`)" in api["rule"] and "tls" in api
    assert api["entryPoints"] == ["websecure"]
    gateway = dynamic["http"]["services"][api["service"]]["loadBalancer"]["servers"]
    assert gateway == [{"url": "http://gateway:8000"}]
    mqtt = dynamic["tcp"]["routers"]["mqtt"]
    assert mqtt["entryPoints"] == ["mqtts"] and "tls" in mqtt
    backend = dynamic["tcp"]["services"][mqtt["service"]]["loadBalancer"]["servers"]
    assert backend == [{"address": "mosquitto:1883"}]
    assert re.search(r"^listener 1883$", (DEPLOY / "mosquitto" / "compose.conf").read_text(), re.M)
    # Internal routes never go out through Traefik.
    console = dynamic["http"]["routers"]["console"]["rule"]
    assert "!PathPrefix(`/internal`)" in console and "!PathPrefix(`/metrics`)" in console


def test_grafana_mounts_the_provisioning_and_dashboards_folders():
    grafana = resolved()["services"]["grafana"]
    found = mounts(grafana)
    provisioning = found["/etc/grafana/provisioning"]
    dashboards = found["/var/lib/grafana/dashboards"]
    assert provisioning["source"] == str(DEPLOY / "grafana" / "provisioning")
    assert dashboards["source"] == str(DEPLOY / "grafana" / "dashboards")
    assert provisioning.get("read_only") and dashboards.get("read_only")


@pytest.mark.real
def test_the_compose_mosquitto_config_starts_a_real_mosquitto(tmp_path):
    """compose.conf + fieldline.conf, paths moved under tmp_path: Mosquitto accepts them
    (include_dir, listener, files) and refuses an anonymous client."""
    import shutil
    import subprocess

    import paho.mqtt.client as mqtt

    from tests.support.servers import free_port, port_open, wait_for

    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed; run `scripts/services.sh up`", pytrace=False)
    root = tmp_path / "mosquitto"
    for folder in ("config/conf.d", "auth", "data"):
        (root / folder).mkdir(parents=True)
    (root / "auth" / "passwords").touch()
    (root / "auth" / "acl").touch()
    (root / "config" / "conf.d" / "fieldline.conf").write_text(
        (DEPLOY / "mosquitto" / "fieldline.conf").read_text()
    )
    port = free_port()
    conf = (DEPLOY / "mosquitto" / "compose.conf").read_text().replace("/mosquitto/", f"{root}/")
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1") + "\nuser root\n"
    (root / "config" / "mosquitto.conf").write_text(conf)
    process = subprocess.Popen(
        ["mosquitto", "-c", str(root / "config" / "mosquitto.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: port_open(port) or process.poll() is not None, 10, "Mosquitto")
        assert process.poll() is None, process.stdout.read().decode()
        assert (root / "auth" / "mosquitto.pid").read_text().strip() == str(process.pid)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anonymous-probe")
        code = client.connect("127.0.0.1", port)
        refused = []
        client.on_connect = lambda c, u, f, rc, p: refused.append(rc.is_failure)
        client.loop_start()
        wait_for(lambda: bool(refused), 5, "an answer to the anonymous CONNECT")
        client.loop_stop()
        assert code == 0 and refused == [True], "an anonymous client was admitted"
    finally:
        process.terminate()
        process.wait(10)
