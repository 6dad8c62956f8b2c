"""`provision flash` failing after the device was created: it says so and cleans up."""

from __future__ import annotations

import io
import re

import pytest

from fieldline_provision.cli import main
from fieldline_provision.serial_board_link import SerialBoardLink
from hil_tests.backend import running_backend
from tests.support.servers import create_pg_database, drop_pg_database, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_database(pg_admin_url):
    url = create_pg_database(pg_admin_url)
    yield url
    drop_pg_database(url)


def login(backend, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(backend.stack.settings.data_dir / "config"))
    monkeypatch.setattr("sys.stdin", io.StringIO(backend.password + "\n"))
    argv = ["login", "--api", backend.api_url, "--username", backend.username]
    assert main([*argv, "--password-stdin"]) == 0
    capsys.readouterr()


def test_config_write_failure_deletes_the_new_device(
    board, tmp_path, pg_database, monkeypatch, capsys
):
    # A folder where config.json's temporary file goes: the board refuses to write it.
    link = SerialBoardLink.open(board.port)
    try:
        link.exec("import os\ntry:\n os.mkdir('config.json.tmp')\nexcept OSError:\n pass")
    finally:
        link.close()
    with running_backend(tmp_path / "backend", pg_database) as backend:
        login(backend, monkeypatch, capsys)
        code = main(["flash", "--port", board.port, "--sensor", "simulated", "--timeout", "30"])
        err = capsys.readouterr().err
        assert code == 6, err
        assert re.search(r"device dev-\S+ was deleted again; nothing is left", err)
        assert backend.device_ids() == []
    link = SerialBoardLink.open(board.port)
    try:
        link.exec("import os\nos.rmdir('config.json.tmp')")
    finally:
        link.close()


def test_unreachable_broker_keeps_the_device_and_names_the_suspect(
    board, tmp_path, pg_database, monkeypatch, capsys
):
    if not board.is_rig:
        pytest.fail("this test needs the rig (it points the device at a dead local port)")
    dead_port = free_port()
    with running_backend(tmp_path / "backend", pg_database, device_mqtt_port=dead_port) as backend:
        login(backend, monkeypatch, capsys)
        code = main(["flash", "--port", board.port, "--sensor", "simulated", "--timeout", "8"])
        err = capsys.readouterr().err
        assert code == 11, err
        last = err.strip().splitlines()[-1]
        assert "suspect broker" in last
        device_id = re.search(r"device (dev-\S+) is kept", last).group(1)
        assert f"--device-id {device_id}" in last
        assert backend.device_ids() == [device_id]


def test_a_wifi_network_the_board_cannot_see_creates_nothing(
    board, tmp_path, pg_database, monkeypatch, capsys
):
    if not board.is_rig:
        pytest.fail("this test needs the rig (a board without a network module)")
    with running_backend(tmp_path / "backend", pg_database) as backend:
        login(backend, monkeypatch, capsys)
        argv = ["flash", "--port", board.port, "--sensor", "simulated", "--wifi-ssid", "home"]
        assert main(argv) == 2
        assert "has no Wi-Fi (no `network` module)" in capsys.readouterr().err
        assert backend.device_ids() == []
