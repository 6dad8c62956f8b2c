"""The Fieldline public API as `provision` uses it; HTTP failures become ProvisionErrors."""

from __future__ import annotations

import socket

import httpx

from fieldline_provision.errors import ApiRequestFailed, ApiUnreachable, TokenRejected


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        detail = "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail)[:300]


class FieldlineApi:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FieldlineApi:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, socket.gaierror) as error:
            raise ApiUnreachable(self.base_url, type(error).__name__) from None
        except httpx.TimeoutException:
            raise ApiUnreachable(self.base_url, "no answer in time") from None
        except httpx.HTTPError as error:
            raise ApiUnreachable(self.base_url, str(error) or type(error).__name__) from None
        if response.status_code == 401:
            raise TokenRejected(self.base_url)
        if response.status_code >= 400:
            raise ApiRequestFailed(
                f"the API refused {method} {path}: HTTP {response.status_code} {_detail(response)}"
            )
        return response

    # ---- login -----------------------------------------------------------------------

    def password_login(self, username: str, password: str) -> str:
        """OAuth2 password form -> a short-lived access token."""
        try:
            response = self._http.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
        except httpx.HTTPError as error:
            raise ApiUnreachable(self.base_url, type(error).__name__) from None
        if response.status_code in (400, 401):
            raise ApiRequestFailed("wrong user name or password: check them and try again")
        if response.status_code >= 400:
            raise ApiRequestFailed(f"login failed: HTTP {response.status_code} {_detail(response)}")
        return response.json()["access_token"]

    def create_personal_token(self, name: str) -> str:
        body = self._request("POST", "/tokens", json={"name": name}).json()
        for key in ("token", "access_token", "value", "secret"):
            if isinstance(body.get(key), str):
                return body[key]
        raise ApiRequestFailed("the API created a token but did not return it: update the server")

    # ---- devices ---------------------------------------------------------------------

    def create_device(self, name: str, metadata: dict | None = None) -> dict:
        return self._request(
            "POST", "/devices", json={"name": name, "metadata": metadata or {}}
        ).json()

    def rotate_credentials(self, device_id: str) -> dict:
        return self._request("POST", f"/devices/{device_id}/credentials/rotate").json()

    def put_config(self, device_id: str, change: dict) -> dict:
        """Store the next desired config version (docs/fleet.md); the server's answer."""
        return self._request("PUT", f"/devices/{device_id}/config", json=change).json()

    def upload_bundle(self, data: bytes) -> dict:
        """Store an OTA bundle (docs/ota.md); the server verifies every file."""
        headers = {"Content-Type": "application/octet-stream"}
        return self._request("POST", "/bundles", content=data, headers=headers).json()

    def list_devices(self) -> list[dict]:
        body = self._request("GET", "/devices").json()
        if isinstance(body, dict):  # a paginated answer
            body = body.get("items") or body.get("devices") or []
        return body

    def get_device(self, device_id: str) -> dict:
        return self._request("GET", f"/devices/{device_id}").json()

    def delete_device(self, device_id: str) -> None:
        self._request("DELETE", f"/devices/{device_id}")

    def device_status(self, device_id: str) -> dict:
        return self._request("GET", f"/devices/{device_id}/status").json()

    def telemetry(self, device_id: str, fields: list[str] | None = None) -> dict:
        params = {"fields": ",".join(fields)} if fields else None
        return self._request("GET", f"/devices/{device_id}/telemetry", params=params).json()
