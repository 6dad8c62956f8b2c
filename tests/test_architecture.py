"""The house rules of docs/architecture.md, checked on every run of the suite.

The import contracts live in pyproject.toml ([tool.importlinter]) and the complexity
limit in [tool.ruff.lint.mccabe]; these tests run the two tools so that
`./scripts/test.sh` (and `pytest tests/test_architecture.py`) fail when a rule is broken.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    # The venv's scripts sit next to its python; fall back to PATH.
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [_tool("lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"lint-imports: expected every contract kept, got:\n{run.stdout}"
    assert "0 broken" in run.stdout, run.stdout


def test_no_function_is_above_the_complexity_limit() -> None:
    run = subprocess.run(
        [_tool("ruff"), "check", "--select", "C901", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, (
        f"ruff C901: expected no function over the limit, got:\n{run.stdout}"
    )
