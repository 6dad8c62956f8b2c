"""The mqtt_auth service as the registry sees it: issue, rotate, change, remove a device's
MQTT account (contract: docs/architecture.md, "mqtt_auth service")."""

from __future__ import annotations

import httpx


class MqttAuthFailed(Exception):
    """mqtt_auth could not be reached (status None) or refused the change (its status)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def outcome_unknown(self) -> bool:
        """True when mqtt_auth may have done the change before failing (timeout, 5xx)."""
        return self.status is None or self.status >= 500


class MqttAccountsClient:
    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise MqttAuthFailed(f"mqtt_auth unreachable: {type(error).__name__}") from error
        return response

    @staticmethod
    def _expect(response: httpx.Response, *codes: int) -> httpx.Response:
        if response.status_code not in codes:
            # The body may echo the request, never a password: mqtt_auth's errors do not
            # carry credentials, and success bodies are not logged.
            raise MqttAuthFailed(
                f"mqtt_auth answered {response.status_code} to "
                f"{response.request.method} {response.request.url.path}",
                status=response.status_code,
            )
        return response

    async def create(self, device_id: str, owner_id: int, name: str, metadata: dict) -> dict:
        body = {"device_id": device_id, "owner_id": owner_id, "name": name, "metadata": metadata}
        response = await self._call("POST", "/internal/mqtt-accounts", json=body)
        return self._expect(response, 201, 200).json()

    async def rotate(self, client_id: str) -> dict:
        response = await self._call("POST", f"/internal/mqtt-accounts/{client_id}/rotate")
        return self._expect(response, 200).json()

    async def update(self, client_id: str, changes: dict) -> None:
        response = await self._call("PATCH", f"/internal/mqtt-accounts/{client_id}", json=changes)
        self._expect(response, 200, 204)

    async def delete(self, client_id: str) -> None:
        """Remove the account; one that is gone already counts as removed."""
        response = await self._call("DELETE", f"/internal/mqtt-accounts/{client_id}")
        self._expect(response, 204, 200, 404)
