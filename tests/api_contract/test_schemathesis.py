"""The API answers what its OpenAPI document says: schemathesis 4 (its CLI, as a user
runs it) against the public and the internal operations of a running `fieldline up`,
every phase (examples, coverage, fuzzing, stateful), the default checks with the
exemptions of schemathesis.toml. Bounded for CI: a fixed seed, 8 examples per operation,
one worker (~20 s). More by hand: `st run ... -n 200` (docs/api.md, "Errors")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ST = str(Path(sys.executable).parent / "st")


def test_schemathesis_finds_no_failure(api):
    run = subprocess.run(
        [
            ST, "run", f"{api.base_url}/openapi.json",
            "-H", f"Authorization: Bearer {api.token}",
            "-H", f"X-Fieldline-Internal: {api.internal_token}",
            # Signing out (DELETE /api/v1/auth/token) would revoke the run's own token.
            "--exclude-path", "/api/v1/auth/token",
            "--max-examples", "8", "--seed", "13", "--workers", "1", "--no-color",
        ],
        cwd=ROOT,  # schemathesis.toml
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    summary = run.stdout[run.stdout.find("SUMMARY") :] or run.stdout[-3000:]
    print(summary)
    assert "Configuration:" in run.stdout and "schemathesis.toml" in run.stdout, run.stdout[:800]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in summary and "failures" not in summary, summary
