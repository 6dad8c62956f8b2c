"""One `fieldline up` process on the embedded defaults (a real process: the HTTP limits,
the exception handlers and the OpenAPI document as a user gets them), an admin signed in,
and the internal token read from its data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port, wait_for

FIELDLINE = str(Path(sys.executable).parent / "fieldline")
PASSWORD = "contract-password-1"


@dataclass
class Api:
    base_url: str
    token: str
    internal_token: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def internal(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=30,
            headers={"X-Fieldline-Internal": self.internal_token},
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("api-contract")
    data = root / "data"
    # The embedded defaults: no FIELDLINE_* from the test services' environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}
    subprocess.run(
        [FIELDLINE, "users", "create", "--username", "admin", "--password-stdin", "--admin",
         "--data-dir", str(data)],
        input=PASSWORD, text=True, env=env, check=True, capture_output=True,
    )  # fmt: skip
    http_port = free_port()
    log = (root / "up.log").open("w")
    process = subprocess.Popen(
        [FIELDLINE, "up", "--data-dir", str(data), "--http-port", str(http_port),
         "--mqtt-port", str(free_port())],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="fieldline up")
        answer = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        internal = (data / "secrets" / "internal_token").read_text().strip()
        yield Api(base, answer.json()["access_token"], internal)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
