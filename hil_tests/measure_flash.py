"""Numbers for the issue, run by hand (never by the test suite):

    .venv/bin/python -m hil_tests.measure_flash [runs]

Starts a backend (PostgreSQL from scripts/services.sh + a private Mosquitto) and a fresh
rig, then runs the real `provision flash --sensor simulated` command twice (the second
time with --device-id), and prints for each: wall time of the whole command, time until
the board was reset (upload + API + config), and bytes uploaded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hil_tests.backend import running_backend
from hil_tests.rig import Rig
from tests.support.servers import create_pg_database, drop_pg_database, service_env

PROVISION = Path(sys.executable).with_name("provision")


def run_flash(env: dict, *argv: str) -> dict:
    started = time.monotonic()
    reset_at = None
    process = subprocess.Popen(
        [str(PROVISION), "flash", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if line.startswith("[6/6]") and reset_at is None:
            reset_at = time.monotonic() - started
    out = process.stdout.read()
    code = process.wait()
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"provision flash failed ({code}):\n{out}")
    uploaded = re.search(r"uploaded (\d+) files \+ config \((\d+) bytes\)", out)
    device = re.search(r"device (dev-\S+)", out).group(1)
    return {
        "device": device,
        "wall_s": wall,
        "until_reset_s": reset_at,
        "files": int(uploaded.group(1)),
        "bytes": int(uploaded.group(2)),
    }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    pg_url = create_pg_database(service_env()["FIELDLINE_TEST_PG_URL"])
    work = Path(tempfile.mkdtemp(prefix="fieldline-measure-"))
    try:
        with running_backend(work / "backend", pg_url) as backend:
            env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"))
            subprocess.run(
                [str(PROVISION), "login", "--api", backend.api_url, "--username",
                 backend.username, "--password-stdin"],
                input=backend.password + "\n", env=env, check=True, text=True,
                capture_output=True,
            )  # fmt: skip
            for run in range(runs):
                with Rig(work / f"flash{run}") as rig:
                    args = ["--port", rig.port, "--sensor", "simulated", "--interval", "1"]
                    first = run_flash(env, *args)
                    second = run_flash(env, *args, "--device-id", first["device"])
                for label, result in (("first", first), ("second", second)):
                    print(
                        f"run {run + 1} {label:6}: wall {result['wall_s']:.2f} s "
                        f"(until reset {result['until_reset_s']:.2f} s), "
                        f"{result['files']} files + config = {result['bytes']} bytes"
                    )
    finally:
        drop_pg_database(pg_url)


if __name__ == "__main__":
    main()
