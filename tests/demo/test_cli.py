"""`fieldline demo` / `fieldline simulate`: help with examples, and errors that say what
to do (exit 2, one line, no traceback)."""

from __future__ import annotations

import socket

import pytest

from fieldline_backend.cli import main
from tests.support.servers import free_port


@pytest.mark.parametrize("command", ["demo", "simulate"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"fieldline {command} " in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--speed", "0"], "must be above 0"),
        (["demo", "--devices", "-3"], "must be above 0"),
        (["simulate", "--api", "http://x", "--token", "t", "--rate", "fast"], "is not a number"),
        (["simulate", "--token", "t"], "--api"),
    ],
)
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_on_a_taken_port_says_which_option_to_change(tmp_path, capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        code = main(
            ["demo", "--data-dir", str(tmp_path), "--http-port", str(free_port())]
            + ["--mqtt-port", str(taken)]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert f"port {taken} (MQTT broker) is already in use" in err and "--mqtt-port" in err


def test_demo_needs_two_devices(tmp_path, capsys):
    assert main(["demo", "--data-dir", str(tmp_path), "--devices", "1"]) == 2
    assert "at least 2 devices" in capsys.readouterr().err


def test_demo_refuses_real_infrastructure_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIELDLINE_DATABASE_URL", "postgresql://db/fieldline")
    assert main(["demo", "--data-dir", str(tmp_path)]) == 2
    assert "fieldline simulate" in capsys.readouterr().err


def test_simulate_against_no_api_says_so(tmp_path, capsys):
    port = free_port()  # nothing listens there
    code = main(
        ["simulate", "--api", f"http://127.0.0.1:{port}", "--token", "flp_x"]
        + ["--devices", "1", "--duration", "1", "--state-dir", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err


def test_simulate_with_an_unreadable_ca_file(tmp_path, capsys):
    code = main(
        ["simulate", "--api", "http://127.0.0.1:9", "--token", "t"]
        + ["--mqtt-ca", str(tmp_path / "missing.pem")]
    )
    assert code == 2
    assert "cannot read --mqtt-ca" in capsys.readouterr().err
