"""The console's way to the data: the gateway's own public API, called in-process.

Every read and change goes through /api/v1 with the session as a bearer token, over
httpx's ASGI transport (no socket, no second hop through Traefik). Owner scoping,
validation and error messages therefore stay exactly those of the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, detail: Any):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail

    def messages(self) -> list[str]:
        """The API's detail as sentences a person reads ('field: what is wrong')."""
        if isinstance(self.detail, list):
            found = []
            for item in self.detail:
                if isinstance(item, dict):
                    where = [str(p) for p in item.get("loc", []) if p not in ("body", "rule")]
                    prefix = f"{'.'.join(where)}: " if where else ""
                    found.append(prefix + str(item.get("msg", item)))
                else:
                    found.append(str(item))
            return found
        if isinstance(self.detail, dict):
            return [str(self.detail.get("detail", self.detail))]
        return [str(self.detail)]


@dataclass
class Api:
    client: httpx.AsyncClient

    async def request(self, method: str, path: str, **kwargs) -> Any:
        return (await self.answer(method, path, **kwargs))[1]

    async def answer(self, method: str, path: str, **kwargs) -> tuple[int, Any]:
        """The status and the JSON body (None when empty); ApiError from 400 on."""
        response = await self.client.request(method, "/api/v1" + path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:500]
            raise ApiError(response.status_code, detail)
        if response.status_code == 204 or not response.content:
            return response.status_code, None
        return response.status_code, response.json()

    async def get(self, path: str, **params) -> Any:
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return await self.request("GET", path, params=clean)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json=body)

    async def post_bytes(self, path: str, data: bytes) -> tuple[int, Any]:
        """A raw body (a bundle's tar) as application/octet-stream: status and answer
        (an upload says 201 new, 200 stored before)."""
        headers = {"Content-Type": "application/octet-stream"}
        return await self.answer("POST", path, content=data, headers=headers)

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, json=body)

    async def patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, json=body)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def close(self) -> None:
        await self.client.aclose()


def api_for(app, token: str) -> Api:
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(
        transport=transport,
        base_url="http://console.internal",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return Api(client)
