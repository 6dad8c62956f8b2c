"""OTA on the device (docs/ota.md): the Updater against a fake chunk server and the loader
on a scratch board (tests/sdk/ota_cases.py), under CPython and, the same cases, under
the MicroPython unix port (64-bit from PyPI, and the ESP32-sized 32-bit build)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.sdk.board import (
    DEVICE,
    ESP32_MICROPYTHON,
    ROOT,
    build_board,
    device_config,
    micropython_path,
    require_esp32_micropython,
)


def _load_loader():
    # loader.py sits at a board's root; here it is loaded by its path, as the simulator does.
    spec = importlib.util.spec_from_file_location("loader", DEVICE / "loader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["loader"] = module


_load_loader()

from tests.sdk import ota_cases  # noqa: E402


@pytest.mark.parametrize("case", ota_cases.CASES, ids=lambda c: c.__name__)
def test_ota_under_cpython(case, tmp_path):
    case(str(tmp_path))


@pytest.mark.parametrize("interpreter", ["micropython", "esp32"])
def test_ota_under_micropython(interpreter, tmp_path):
    if interpreter == "esp32":
        require_esp32_micropython()
        # 32-bit objects and floats; a larger heap than a board's, because this harness
        # (compiled from source) keeps ~74 KB: the board's heap is measured on the rig.
        command = [str(ESP32_MICROPYTHON), "-X", "heapsize=256k"]
    else:
        command = [str(micropython_path())]
    board = build_board(tmp_path / "board", device_config("dev-ota", 1))
    (board / "ota_cases.py").write_text((ROOT / "tests" / "sdk" / "ota_cases.py").read_text())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = subprocess.run(
        [*command, "ota_cases.py", str(scratch)],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    for case in ota_cases.CASES:
        assert f"PASS {case.__name__}" in output, output[-5000:]
    assert "ALL PASSED 0" in output, output[-5000:]
