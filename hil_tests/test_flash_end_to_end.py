"""`provision flash` end to end: fresh board -> device online -> readings in the API.

The backend runs real PostgreSQL and a private Mosquitto kept by mqtt_auth (queue and
time series embedded). On the rig the board reaches it on 127.0.0.1. On a real board it
needs the board's Wi-Fi and an address the board can reach:
FIELDLINE_HIL_WIFI_SSID, FIELDLINE_HIL_WIFI_PASSWORD, FIELDLINE_HIL_HOST_ADDRESS.
"""

from __future__ import annotations

import io
import json
import os
import re
import time

import pytest

from fieldline_provision.cli import main
from hil_tests.backend import running_backend
from tests.support.servers import create_pg_database, drop_pg_database

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(board, tmp_path, pg_admin_url, monkeypatch):
    if not board.is_rig:
        missing = [
            name
            for name in ("FIELDLINE_HIL_WIFI_SSID", "FIELDLINE_HIL_HOST_ADDRESS")
            if not os.environ.get(name)
        ]
        if missing:
            pytest.fail(
                f"the end-to-end test on a real board needs {', '.join(missing)} "
                "(the board's Wi-Fi and the host address it can reach)",
                pytrace=False,
            )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    pg_url = create_pg_database(pg_admin_url)
    try:
        with running_backend(
            tmp_path / "backend", pg_url, public_host=os.environ.get("FIELDLINE_HIL_HOST_ADDRESS")
        ) as running:
            yield running
    finally:
        drop_pg_database(pg_url)


def wifi_args(board, monkeypatch) -> list[str]:
    if board.is_rig:
        return []  # empty SSID: the host network
    monkeypatch.setattr("sys.stdin", io.StringIO(os.environ.get("FIELDLINE_HIL_WIFI_PASSWORD", "")))
    return ["--wifi-ssid", os.environ["FIELDLINE_HIL_WIFI_SSID"], "--wifi-password-stdin"]


def login(backend, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(backend.password + "\n"))
    argv = ["login", "--api", backend.api_url, "--username", backend.username]
    assert main([*argv, "--password-stdin"]) == 0
    capsys.readouterr()


def flash(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["flash", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def readings(backend, device_id: str) -> list:
    with backend.stack.client() as http:
        token = http.post(
            "/api/v1/auth/token",
            data={"username": backend.username, "password": backend.password},
        ).json()["access_token"]
        answer = http.get(
            f"/api/v1/devices/{device_id}/telemetry",
            params={"fields": "temperature", "start": "-10m"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["fields"]["temperature"]


def wait_more_readings(backend, device_id: str, than: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while True:
        points = readings(backend, device_id)
        if len(points) > than:
            return points
        assert time.monotonic() < deadline, f"no reading after the {than} known ones"
        time.sleep(0.5)


def board_config(board) -> dict:
    from fieldline_provision.serial_board_link import SerialBoardLink

    link = SerialBoardLink.open(board.port)
    try:
        return json.loads(link.read_file("config.json"))
    finally:
        link.reset()
        link.close()


def test_fresh_board_to_readings_in_the_api(board, backend, monkeypatch, capsys):
    login(backend, monkeypatch, capsys)
    args = ["--port", board.port, "--sensor", "simulated", "--interval", "1", "--timeout", "90"]
    code, out, err = flash(capsys, *args, *wifi_args(board, monkeypatch))
    assert code == 0, err
    device_id = re.search(r"device (dev-\S+) created and online", out).group(1)
    assert "first reading: temperature=" in out
    assert backend.device_ids() == [device_id]

    # The app keeps sampling with its new credentials: more readings arrive.
    first = readings(backend, device_id)
    assert first, "flash reported a first reading the API does not have"
    wait_more_readings(backend, device_id, len(first))

    # The credentials went to the board and nowhere else.
    config = board_config(board)
    assert config["device_id"] == device_id
    assert config["mqtt"]["password"] and config["mqtt"]["password"] not in out + err

    # The server keeps what was flashed as the desired config (the console shows and
    # changes the same): version 1, whose number the board holds and reports applied.
    assert config["config_version"] == 1
    deadline = time.monotonic() + 30
    while not (state := backend.api_get(f"/devices/{device_id}/config"))["reported"]:
        assert time.monotonic() < deadline, f"the board never reported its config: {state}"
        time.sleep(0.5)
    assert state["desired"]["config"] == {
        "interval_s": 1,
        "sensors": [{"kind": "simulated", "name": "temperature"}],
    }
    assert state["reported"]["version"] == 1 and state["reported"]["status"] == "applied"


def test_reflash_with_device_id_uploads_only_the_config_and_keeps_one_device(
    board, backend, monkeypatch, capsys
):
    login(backend, monkeypatch, capsys)
    args = ["--port", board.port, "--sensor", "simulated", "--interval", "1", "--timeout", "90"]
    code, out, err = flash(capsys, *args, *wifi_args(board, monkeypatch))
    assert code == 0, err
    device_id = re.search(r"device (dev-\S+) created", out).group(1)
    files = int(re.search(r"(\d+) of \1 files differ", err).group(1))
    old_password = board_config(board)["mqtt"]["password"]

    code, out, err = flash(capsys, *args, "--device-id", device_id, *wifi_args(board, monkeypatch))
    assert code == 0, err
    assert f"0 of {files} files differ on the board (0 bytes to upload, {files} unchanged)" in err
    assert re.search(r"uploaded 0 files \+ config \(\d+ bytes\)", out)
    assert f"device {device_id} reflashed and online" in out
    assert backend.device_ids() == [device_id]
    # Rotated: the board holds a new password and still delivers with it.
    assert board_config(board)["mqtt"]["password"] != old_password
    wait_more_readings(backend, device_id, len(readings(backend, device_id)))


def test_device_rotate_with_port_rewrites_the_board_and_it_keeps_delivering(
    board, backend, monkeypatch, capsys
):
    login(backend, monkeypatch, capsys)
    args = ["--port", board.port, "--sensor", "simulated", "--interval", "1", "--timeout", "90"]
    code, out, err = flash(capsys, *args, *wifi_args(board, monkeypatch))
    assert code == 0, err
    device_id = re.search(r"device (dev-\S+) created", out).group(1)
    old_password = board_config(board)["mqtt"]["password"]

    assert main(["device", "rotate", device_id, "--port", board.port]) == 0
    out = capsys.readouterr().out
    assert f"wrote it to the board on {board.port}" in out
    new_password = board_config(board)["mqtt"]["password"]
    assert new_password != old_password and new_password not in out
    wait_more_readings(backend, device_id, len(readings(backend, device_id)))


HEAP_HOG = """\
import time
hog = []
try:
    while True:
        hog.append(bytearray(2048))
except MemoryError:
    del hog[-3:]  # leaves ~6 KB: a user's app that uses the heap it has
print("hog ready")
while True:
    time.sleep(0.1)
"""


@pytest.fixture
def esp32_rig(tmp_path):
    """The rig on the ESP32-sized interpreter at an ESP32's heap (111,936 bytes)."""
    from hil_tests.rig import Rig
    from tests.sdk.board import ESP32_HEAP, ESP32_MICROPYTHON

    with Rig(tmp_path / "esp32-flash", micropython=ESP32_MICROPYTHON, heapsize=ESP32_HEAP) as rig:
        yield rig


def test_reflashing_a_running_board_whose_app_filled_the_heap(
    esp32_rig, backend, monkeypatch, capsys
):
    """Issue 14, items 1 and 2, at the board's heap: the upload is .mpy, and a board whose
    app holds nearly all the heap is re-provisioned (the raw REPL's soft reset frees it;
    before, the upload ended with "the board raised MemoryError")."""
    login(backend, monkeypatch, capsys)
    args = ["--port", esp32_rig.port, "--sensor", "simulated", "--interval", "1"]
    code, out, err = flash(capsys, *args, "--timeout", "90")
    assert code == 0, err
    assert "as .mpy (bytecode v6." in err, err
    device_id = re.search(r"device (dev-\S+) created", out).group(1)
    flash_dir = esp32_rig.flash_dir
    assert (flash_dir / "lib/fieldline/session.mpy").exists()
    assert not (flash_dir / "lib/fieldline/session.py").exists()

    (flash_dir / "main.py").write_text(HEAP_HOG)
    esp32_rig.press_reset()
    assert esp32_rig.wait_for_console("hog ready", 30), esp32_rig.console()[-2000:]
    code, out, err = flash(capsys, *args, "--device-id", device_id, "--timeout", "90")
    assert code == 0, err + esp32_rig.console()[-2000:]
    assert f"device {device_id} reflashed and online" in out
    assert "HEAP_HOG" not in (flash_dir / "main.py").read_text()
    wait_more_readings(backend, device_id, len(readings(backend, device_id)))


def test_flashing_a_name_that_exists_refuses_or_replaces_never_a_second_device(
    board, backend, monkeypatch, capsys
):
    """Issue 14, item 7: the same --name again used to create a second device and leave
    the first enabled with working credentials."""
    login(backend, monkeypatch, capsys)
    args = ["--port", board.port, "--sensor", "simulated", "--interval", "1", "--timeout", "90"]
    code, out, err = flash(capsys, *args, "--name", "greenhouse", *wifi_args(board, monkeypatch))
    assert code == 0, err
    device_id = re.search(r"device (dev-\S+) created", out).group(1)
    old_password = board_config(board)["mqtt"]["password"]

    code, out, err = flash(capsys, *args, "--name", "greenhouse", *wifi_args(board, monkeypatch))
    assert code != 0
    assert f"a device named 'greenhouse' exists ({device_id})" in err, err
    assert f"--device-id {device_id} (or --replace)" in err
    assert backend.device_ids() == [device_id]

    code, out, err = flash(
        capsys, *args, "--name", "greenhouse", "--replace", *wifi_args(board, monkeypatch)
    )
    assert code == 0, err
    assert f"device {device_id} reflashed and online" in out
    assert backend.device_ids() == [device_id]
    assert board_config(board)["mqtt"]["password"] != old_password
