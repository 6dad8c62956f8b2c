"""Issue 8, "Done when" 2: devices over TLS, end to end from the tools an operator uses.

scripts/dev_certs.sh makes the CA and the broker's certificate; Mosquitto's TLS listener
serves it (standing in for Traefik's TLS termination on 8883); `provision`'s config
builder writes the CA into the device's config.json; the SDK, under the real
MicroPython unix port (mbedtls) and under CPython (OpenSSL), connects and delivers with
that CA, and refuses a broker whose certificate another CA signed (a second
dev_certs.sh run), retrying with backoff without ever sending a reading."""

from __future__ import annotations

import subprocess

import pytest

from fieldline_backend.common.settings import Settings
from fieldline_backend.devices.schemas import MqttCredentials
from fieldline_provision.device_config import build_config, parse_sensor_spec
from tests.deploy.compose import ROOT
from tests.sdk.board import BoardProcess, Collector, build_board, device_config, new_device_id
from tests.support.servers import free_port, port_open, wait_for

pytestmark = pytest.mark.real

INTERPRETERS = ["micropython", "cpython"]
# How each TLS stack words "this certificate is not from the CA I trust".
UNTRUSTED = {"micropython": "not correctly signed", "cpython": "certificate verify failed"}


def dev_certs(directory, *names) -> dict[str, bytes]:
    result = subprocess.run(
        [str(ROOT / "scripts" / "dev_certs.sh"), str(directory), *names],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {name: (directory / name).read_bytes() for name in ("ca.pem", "server.pem")}


@pytest.fixture
def tls_broker(anonymous_mosquitto, tmp_path):
    """Mosquitto with a TLS listener whose certificate scripts/dev_certs.sh made."""
    certs = tmp_path / "certs"
    dev_certs(certs, "localhost", "127.0.0.1")
    tls_port = free_port()
    anonymous_mosquitto.stop()
    anonymous_mosquitto.start(
        extra=f"listener {tls_port} 127.0.0.1\ncafile {certs / 'ca.pem'}\n"
        f"certfile {certs / 'server.pem'}\nkeyfile {certs / 'server.key'}\n"
    )
    wait_for(lambda: port_open(tls_port), 10, f"Mosquitto's TLS listener on {tls_port}")
    return anonymous_mosquitto, tls_port, certs


def provisioned_board(tmp_path, name: str, tls_port: int, ca_file, via: str):
    """A board whose mqtt section is what `provision flash` writes: the CA comes from the
    API's answer (`via="api"`: FIELDLINE_MQTT_PUBLIC_CA_FILE, the devices service's
    MqttCredentials) or from `--ca FILE` (`via="flag"`)."""
    device_id = new_device_id(name)
    settings = Settings(
        mqtt_url=f"mqtt://fieldline-ingestor:unused@127.0.0.1:{tls_port}",
        mqtt_public_tls=True,
        mqtt_public_ca_file=ca_file if via == "api" else None,
    )
    answer = MqttCredentials(
        **settings.device_mqtt_endpoint(),
        client_id=device_id,
        username=device_id,
        password="not-checked-by-this-broker",
    ).model_dump()
    provisioned = build_config(
        device_id,
        answer,
        [parse_sensor_spec("simulated")],
        ca_pem=ca_file.read_text() if via == "flag" else None,
    )
    assert provisioned["mqtt"]["ca"] == ca_file.read_text()
    assert provisioned["mqtt"]["tls"] is True
    config = device_config(device_id, tls_port, backoff={"base_ms": 100, "cap_ms": 500})
    config["mqtt"] = {**provisioned["mqtt"], "keepalive": 2, "connect_timeout_ms": 1500}
    return device_id, build_board(tmp_path / name, config)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_provisioned_device_delivers_over_tls_with_the_dev_ca(tls_broker, tmp_path, interpreter):
    broker, tls_port, certs = tls_broker
    device_id, board = provisioned_board(
        tmp_path, f"tls-{interpreter}", tls_port, certs / "ca.pem", via="api"
    )
    collector = Collector(broker.port, device_id)
    device = BoardProcess(board, interpreter=interpreter)
    try:
        collector.wait_for_seqs(set(range(1, 6)), timeout=30, device=device)
        assert "retry in" not in device.console(), device.console()[-2000:]
    finally:
        device.kill()
        collector.close()


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_device_refuses_a_broker_certificate_from_another_ca(tls_broker, tmp_path, interpreter):
    broker, tls_port, _ = tls_broker
    other = tmp_path / "other-ca"
    dev_certs(other, "localhost", "127.0.0.1")  # a CA of its own, unrelated to the broker's
    device_id, board = provisioned_board(
        tmp_path, f"tls-other-{interpreter}", tls_port, other / "ca.pem", via="flag"
    )
    collector = Collector(broker.port, device_id)
    device = BoardProcess(board, interpreter=interpreter)
    try:
        device.wait_for_line(UNTRUSTED[interpreter], timeout=30, count=3)
        console = device.console()
        assert "fieldline: online" not in console, console[-2000:]
        assert console.count("retry in") >= 3, console[-2000:]
        assert not collector.seqs(boot=None), "readings went over an untrusted connection"
        assert device.process.poll() is None, "the device must keep sampling and retrying"
    finally:
        device.kill()
        collector.close()


def test_a_missing_ca_file_is_named_with_what_to_do(tmp_path):
    settings = Settings(mqtt_public_ca_file=tmp_path / "nope.pem", mqtt_public_tls=True)
    with pytest.raises(ValueError, match="FIELDLINE_MQTT_PUBLIC_CA_FILE=.*nope.pem.*dev_certs.sh"):
        settings.device_mqtt_endpoint()
