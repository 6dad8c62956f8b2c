"""`fieldline demo` as a person starts it: how long until the first stored reading and
the first alert mails at --speed 1, and how much memory the process holds with 5 and
with 200 virtual devices.

Baseline (same machine, same run): `fieldline up` (the same services, no devices) from
the command to its first /healthz answer, and its RSS once settled.

Run by hand:  .venv/bin/python bench/demo.py [--settle 30] [--skip-timing]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port  # noqa: E402

FIELDLINE = [sys.executable, "-m", "fieldline_backend.cli"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}


def start(command: str, data: Path, *extra: str) -> tuple[subprocess.Popen, int, float]:
    http = free_port()
    argv = [*FIELDLINE, command, "--data-dir", str(data), "--http-port", str(http)]
    argv += ["--mqtt-port", str(free_port()), *extra]
    began = time.monotonic()
    process = subprocess.Popen(
        argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return process, http, began


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def stored_readings(data: Path) -> int:
    try:
        with sqlite3.connect(f"file:{data / 'timeseries.db'}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM readings").fetchone()[0]
    except sqlite3.Error:
        return 0


def mails(data: Path) -> list[str]:
    folder = data / "mail" / "new"
    if not folder.is_dir():
        return []
    subjects = []
    for path in folder.iterdir():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Subject:"):
                subjects.append(line[len("Subject:") :].strip())
                break
    return subjects


def until(predicate, timeout: float, began: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic() - began
        time.sleep(0.05)
    return None


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def baseline_up(settle: float) -> tuple[float | None, float]:
    with tempfile.TemporaryDirectory() as tmp:
        process, http, began = start("up", Path(tmp))
        try:
            ready = until(lambda: healthy(http), 60, began)
            time.sleep(settle)
            return ready, rss_mb(process.pid)[0]
        finally:
            stop(process)


def timing_at_speed_1() -> dict[str, float | None]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        process, http, began = start("demo", data, "--speed", "1")
        try:
            result = {
                "API answers": until(lambda: healthy(http), 60, began),
                "first stored reading": until(lambda: stored_readings(data) > 0, 60, began),
            }
            events = {
                "threshold mail": lambda: any("temperature" in s for s in mails(data)),
                "offline mail": lambda: any(" offline: " in s for s in mails(data)),
            }
            deadline = time.monotonic() + 180
            while events and time.monotonic() < deadline:  # one clock for both mails
                for what, seen in list(events.items()):
                    if seen():
                        result[what] = time.monotonic() - began
                        del events[what]
                time.sleep(0.05)
            result.update({what: None for what in events})
            return result
        finally:
            stop(process)


def demo_rss(devices: int, settle: float) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        process, http, began = start("demo", data, "--devices", str(devices))
        try:
            until(lambda: stored_readings(data) > 0, 120, began)
            time.sleep(settle)
            now, peak = rss_mb(process.pid)
            return now, peak, stored_readings(data)
        finally:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before RSS")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()

    ready, up_rss = baseline_up(args.settle)
    print(f"baseline: fieldline up answers /healthz after {ready:.2f} s; RSS {up_rss:.0f} MB")
    if not args.skip_timing:
        for what, seconds in timing_at_speed_1().items():
            shown = f"{seconds:.1f} s" if seconds is not None else "not within the timeout"
            print(f"demo --speed 1: {what:22s} {shown}")
    for devices in (5, 200):
        now, peak, stored = demo_rss(devices, args.settle)
        print(
            f"demo --devices {devices:3d}: RSS {now:.0f} MB (peak {peak:.0f} MB) after "
            f"{args.settle:.0f} s; {stored} readings stored; "
            f"{now - up_rss:+.0f} MB over fieldline up"
        )


if __name__ == "__main__":
    main()
