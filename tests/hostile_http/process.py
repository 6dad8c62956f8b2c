"""A real `fieldline up` (embedded defaults, a temporary data dir) for hostile clients,
and the probes the tests use on it: /healthz and an MQTT CONNECT, timed, and the
process's memory and open descriptors read from /proc."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class FieldlineUp:
    def __init__(
        self, data_dir: Path, nofile: tuple[int, int] | None = None, **settings: str
    ) -> None:
        self.data_dir = data_dir
        self.http_port, self.mqtt_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}
        env.update({f"FIELDLINE_{k.upper()}": str(v) for k, v in settings.items()})
        self.output = data_dir.parent / "fieldline-up.out"
        self._out = self.output.open("w")

        def limit_fds() -> None:  # (soft, hard) descriptor limits the process starts with
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "fieldline_backend.cli", "up", "--data-dir", str(data_dir)]
            + ["--http-port", str(self.http_port), "--mqtt-port", str(self.mqtt_port)],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_fds,
        )
        self.wait_ready()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def internal_token(self) -> str:
        return (self.data_dir / "secrets" / "internal_token").read_text().strip()

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "fieldline.log"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fieldline up exited:\n{self.output.read_text()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"fieldline up not ready in {timeout} s:\n{self.output.read_text()}")

    def status(self, field: str) -> int:
        """A /proc/<pid>/status value in kB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def open_files_limit(self) -> tuple[int, int]:
        """(soft, hard) RLIMIT_NOFILE of the running process, from /proc/<pid>/limits."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
        raise AssertionError(f"no open files limit in /proc/{self.pid}/limits")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._out.close()


def healthz_seconds(base_url: str, timeout: float = 5.0) -> tuple[int | str, float]:
    """(status or error name, seconds) of one GET /healthz on a fresh connection."""
    started = time.monotonic()
    try:
        status: int | str = httpx.get(base_url + "/healthz", timeout=timeout).status_code
    except httpx.HTTPError as error:
        status = type(error).__name__
    return status, time.monotonic() - started


# MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s, client id "probe", no credentials:
# the broker answers CONNACK (refused: not authorised), which is all a probe needs.
CONNECT = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 5]) + b"probe"


def mqtt_connack_seconds(port: int, timeout: float = 5.0) -> tuple[bytes | str, float]:
    """(the CONNACK's first 2 bytes or an error name, seconds) for one raw CONNECT."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(CONNECT)
            answer: bytes | str = sock.recv(4)[:2]
    except OSError as error:
        answer = type(error).__name__
    return answer, time.monotonic() - started
