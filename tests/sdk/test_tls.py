"""Done-when 7: over TLS the device verifies the broker against the configured CA (the
unix port's mbedtls `ssl` module: SSLContext, CERT_REQUIRED, load_verify_locations with DER
cadata, server name checked); a certificate from another CA, or for another name, is
refused and retried with backoff, never used."""

from __future__ import annotations

import pytest

from tests.sdk.board import BoardProcess, Collector, build_board, device_config, new_device_id
from tests.sdk.certs import write_tls_files
from tests.support.servers import free_port, port_open, wait_for


@pytest.fixture
def tls_broker(anonymous_mosquitto, tmp_path):
    files = write_tls_files(tmp_path / "tls")
    tls_port = free_port()
    anonymous_mosquitto.stop()
    anonymous_mosquitto.start(
        extra=f"listener {tls_port} 127.0.0.1\ncafile {files['ca']}\n"
        f"certfile {files['cert']}\nkeyfile {files['key']}\n"
    )
    wait_for(lambda: port_open(tls_port), 10, f"Mosquitto's TLS listener on {tls_port}")
    return anonymous_mosquitto, tls_port, files


def _tls_device(tmp_path, name, tls_port, ca_pem: bytes, **mqtt):
    device_id = new_device_id(name)
    config = device_config(
        device_id,
        tls_port,
        mqtt={"tls": True, "ca": ca_pem.decode(), **mqtt},
        backoff={"base_ms": 100, "cap_ms": 500, "stable_s": 2},
    )
    return device_id, build_board(tmp_path / name, config)


def test_tls_with_the_configured_ca_delivers_readings(tls_broker, tmp_path):
    broker, tls_port, files = tls_broker
    device_id, board = _tls_device(tmp_path, "tls-good", tls_port, files["ca_pem"])
    collector = Collector(broker.port, device_id)
    device = BoardProcess(board)
    try:
        collector.wait_for_seqs(set(range(1, 6)), timeout=30, device=device)
        assert "retry in" not in device.console()
    finally:
        device.kill()
        collector.close()


@pytest.mark.parametrize(
    ("case", "why"),
    [("other-ca", "not correctly signed"), ("wrong-name", "Common Name")],
)
def test_tls_refuses_a_certificate_it_should_not_trust(tls_broker, tmp_path, case, why):
    broker, tls_port, files = tls_broker
    if case == "other-ca":
        device_id, board = _tls_device(tmp_path, "tls-" + case, tls_port, files["other_ca_pem"])
    else:  # right CA, but the certificate is not for the name the device expects
        device_id, board = _tls_device(
            tmp_path, "tls-" + case, tls_port, files["ca_pem"], server_hostname="wrong.example"
        )
    collector = Collector(broker.port, device_id)
    device = BoardProcess(board)
    try:
        device.wait_for_line(why, timeout=30, count=3)
        console = device.console()
        assert "fieldline: online" not in console, console[-2000:]
        assert not collector.seqs(boot=None), "readings went over an untrusted connection"
        assert device.process.poll() is None, "the device must keep sampling and retrying"
    finally:
        device.kill()
        collector.close()
