"""A real `fieldline up` process for the hostile-input tests: its own data dir and ports,
the settings given as FIELDLINE_* variables, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.users import create_user_in
from tests.support.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Server:
    base_url: str
    settings: Settings
    log: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def add_user(self, username: str | None = None, admin: bool = False) -> tuple[str, str]:
        """(username, password) of a new user, written straight into the database."""
        username = username or f"user{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        create_user_in(self.settings, username, password, admin=admin)
        return username, password

    def login(self, username: str, password: str, **headers: str) -> httpx.Response:
        with self.client() as client:
            return client.post(
                "/api/v1/auth/token",
                data={"username": username, "password": password},
                headers=headers,
            )

    def api(self, username: str, password: str) -> httpx.Client:
        """A public-API client with a bearer token from a login."""
        answer = self.login(username, password)
        assert answer.status_code == 200, (
            f"login: expected 200, got {answer.status_code} {answer.text}"
        )
        token = answer.json()["access_token"]
        return self.client(headers={"Authorization": f"Bearer {token}"})

    def console(self, username: str, password: str) -> httpx.Client:
        """A console client signed in through the login form (session cookie)."""
        client = self.client()
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": CSRF.search(page.text).group(1),
                "next": "/devices",
            },
        )
        assert answer.status_code == 303, f"console login: got {answer.status_code}"
        return client


@contextmanager
def fieldline_up(data_dir: Path, serve: str | None = None, **settings: str) -> Iterator[Server]:
    """`fieldline up` (or `fieldline serve <serve>`, one service: quicker to start) with
    FIELDLINE_<KEY>=value for each keyword (e.g. database_url); everything else embedded,
    under data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}
    env.update({f"FIELDLINE_{key.upper()}": value for key, value in settings.items()})
    log = data_dir / "up.out"
    what = ["serve", serve] if serve else ["up"]
    command = [sys.executable, "-m", "fieldline_backend.cli", *what, "--data-dir", str(data_dir),
               "--http-port", str(http_port), "--mqtt-port", str(free_port())]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{http_port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"fieldline up exited ({process.returncode}):\n{log.read_text()}")
        try:
            return httpx.get(base_url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 60, "fieldline up to answer /healthz")
        values = {"data_dir": data_dir, "database_url": settings.get("database_url")}
        yield Server(base_url, Settings(**values), log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
