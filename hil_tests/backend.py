"""A Fieldline backend for the end-to-end rig tests: real PostgreSQL and a private Mosquitto
with the project's configuration (kept by mqtt_auth), the queue and the time-series store
embedded, all services in one process in a thread; plus a user to log in as."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fieldline_backend.common.settings import Settings
from tests.support.servers import MosquittoInstance, free_port
from tests.support.stack import RunningStack, running_stack

SERVICES = ("gateway", "devices", "mqtt_auth", "ingestor", "storage")


@dataclass
class Backend:
    stack: RunningStack
    mosquitto: MosquittoInstance
    username: str
    password: str

    @property
    def api_url(self) -> str:
        return self.stack.base_url

    def api(self, method: str, path: str, **kwargs):
        """A call to /api/v1<path> as the test user; the response."""
        with self.stack.client() as http:
            token = http.post(
                "/api/v1/auth/token", data={"username": self.username, "password": self.password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            return http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def api_get(self, path: str, **params):
        """GET /api/v1<path> as the test user; the answer's JSON (asserting a 200)."""
        answer = self.api("GET", path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def devices(self) -> list[dict]:
        return self.api_get("/devices")

    def device_ids(self) -> list[str]:
        """Every device of the test user, straight from the API."""
        return [device["id"] for device in self.devices()]


@contextmanager
def running_backend(
    workdir: Path,
    pg_url: str,
    public_host: str | None = None,
    device_mqtt_port: int | None = None,
) -> Iterator[Backend]:
    """public_host: an address a real board can reach; the broker then also listens on all
    interfaces and devices are told to use that address (the rig uses 127.0.0.1).
    device_mqtt_port: tell devices this broker port instead (a dead one, for failure tests)."""
    from fieldline_backend.gateway.users import create_user_in

    mosquitto = MosquittoInstance(workdir / "mosquitto", free_port())
    public_port = free_port() if public_host else None
    mosquitto.start(extra=f"listener {public_port} 0.0.0.0" if public_port else "")
    try:
        public = {
            "mqtt_public_host": public_host or ("127.0.0.1" if device_mqtt_port else None),
            "mqtt_public_port": device_mqtt_port or public_port,
        }
        settings = Settings(
            **{k: v for k, v in public.items() if v},
            data_dir=workdir / "data",
            internal_token=secrets.token_urlsafe(32),
            http_port=0,
            database_url=pg_url,
            mqtt_url=f"mqtt://fieldline-ingestor:{secrets.token_urlsafe(18)}"
            f"@127.0.0.1:{mosquitto.port}",
            mosquitto_password_file=mosquitto.password_file,
            mosquitto_acl_file=mosquitto.acl_file,
            mosquitto_pid_file=mosquitto.pid_file,
            storage_batch_seconds=0.1,
            ingestor_client_id=f"ingestor-{secrets.token_hex(4)}",
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with running_stack(settings, SERVICES) as stack:
            username = f"hil{secrets.token_hex(4)}"
            password = secrets.token_urlsafe(16)
            create_user_in(stack.settings, username, password)
            yield Backend(stack, mosquitto, username, password)
    finally:
        mosquitto.stop()
