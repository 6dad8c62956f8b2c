"""`fieldline demo` as a person runs it: a real process, its printed guide, Ctrl-C."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FIELDLINE = [sys.executable, "-m", "fieldline_backend.cli"]


def clean_env(**values: str) -> dict[str, str]:
    """This environment without FIELDLINE_* settings (the demo is embedded), plus values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}
    env.update(values)
    return env


class DemoProcess:
    def __init__(self, command: list[str], env: dict[str, str] | None = None, cwd=ROOT) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env or clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_guide(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not any(line.startswith("Stop with Ctrl-C") for line in self.lines):
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the reader catch the last lines
                raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no guide within {timeout} s:\n{self.output}")
            time.sleep(0.1)
        return self.output

    def token(self) -> str:
        match = re.search(r"^\s*token\s+(flp_\S+)", self.output, re.MULTILINE)
        assert match, f"no token in the guide:\n{self.output}"
        return match.group(1)

    def curl_lines(self) -> list[str]:
        return [line.strip() for line in self.lines if line.strip().startswith("curl ")]

    def wait(self, timeout: float) -> int:
        """The exit status, once every line it printed has been read."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def interrupt(self) -> tuple[int, float]:
        """Ctrl-C; (exit status, seconds until the process was gone)."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"still running 30 s after SIGINT:\n{self.output}") from None
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def api(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def mail_subjects(data_dir: Path) -> list[str]:
    folder = data_dir / "mail" / "new"
    if not folder.is_dir():
        return []
    return [
        str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"])
        for path in sorted(folder.iterdir())
    ]


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    """check() -> (done, details); fails naming what and the last details."""
    deadline = time.monotonic() + timeout
    while True:
        done, details = check()
        if done:
            return details
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s; last seen: {details}")
        time.sleep(interval)
