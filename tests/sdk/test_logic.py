"""The SDK's pure logic (wire bytes, backoff schedule, journal, buffer, readings) under
CPython and, the same cases, under the MicroPython unix port."""

from __future__ import annotations

import subprocess

import pytest

from tests.sdk import logic_cases
from tests.sdk.board import ROOT, build_board, device_config, micropython_path


@pytest.mark.parametrize("case", logic_cases.CASES, ids=lambda c: c.__name__)
def test_logic_under_cpython(case, tmp_path):
    case(str(tmp_path))


def test_logic_under_micropython(tmp_path):
    board = build_board(tmp_path / "board", device_config("dev-logic", 1))
    (board / "logic_cases.py").write_text((ROOT / "tests" / "sdk" / "logic_cases.py").read_text())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = subprocess.run(
        [str(micropython_path()), "logic_cases.py", str(scratch)],
        cwd=board,
        env={"MICROPYPATH": "lib:.:.frozen"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    for case in logic_cases.CASES:
        assert f"PASS {case.__name__}" in output, output
    assert "ALL PASSED 0" in output, output
