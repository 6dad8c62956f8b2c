"""The `provision` command line: help with examples, exit codes, API errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fieldline_provision.cli import EXIT_CODES, build_parser, exit_code_for, main
from fieldline_provision.errors import NoSuchPort, ProvisionError
from tests.support.servers import free_port

COMMANDS = [
    ["login"],
    ["logout"],
    ["ports"],
    ["flash"],
    ["device", "list"],
    ["device", "show"],
    ["device", "rotate"],
    ["device", "delete"],
    ["monitor"],
    ["verify"],
]


def test_top_level_help_has_examples_and_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "fieldline_provision.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "provision flash --port /dev/ttyUSB0 --sensor simulated" in result.stdout
    assert "exit codes:" in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "provision " + command[0] in out


def test_exit_codes_are_distinct_per_kind_of_failure():
    assert exit_code_for(NoSuchPort("/dev/x")) == 3
    assert exit_code_for(ProvisionError("other")) == 1
    assert set(EXIT_CODES.values()) <= set(range(2, 13))
    assert build_parser().prog == "provision"


def test_unreachable_api_is_one_line(capsys):
    port = free_port()  # nothing listens there
    code = main(["device", "list", "--api", f"http://127.0.0.1:{port}", "--token", "t"])
    err = capsys.readouterr().err
    assert code == 7
    assert f"cannot reach the Fieldline API at http://127.0.0.1:{port}" in err
    assert err.count("\n") == 1


def test_flash_refuses_a_bad_sensor_before_touching_anything(capsys):
    code = main(["flash", "--port", "/dev/ttyFIELDLINE-missing", "--sensor", "dht22"])
    assert code == 2
    assert "needs a GPIO number for pin" in capsys.readouterr().err
