"""The one typed client through which a service reaches another service's API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class UpstreamError(RuntimeError):
    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status


class Upstream:
    """Another service of the line, reached over HTTP with this service's credentials for it."""

    def __init__(self, name: str, client: httpx.AsyncClient) -> None:
        self.name = name
        self.client = client
        # every request sent, answered or not: what the clock's benchmark counts
        self.requests = 0

    @classmethod
    def connect(
        cls,
        name: str,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> Upstream:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(
            base_url=base_url, headers=headers, transport=transport, timeout=timeout
        )
        return cls(name, client)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        self.requests += 1
        try:
            response = await self.client.get(path, params=params)
        except httpx.TransportError as error:
            raise UpstreamError(self.name, 503, f"unreachable: {error!r}") from error
        if response.status_code >= 400:
            raise UpstreamError(self.name, response.status_code, response.text[:500])
        return response

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.get(path, params)).json()

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._send("POST", path, body)

    async def put_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """PUT `body`; the owner's answer, or None when it answers 204 No Content."""
        return await self._send("PUT", path, body)

    async def _send(self, method: str, path: str, body: Mapping[str, Any]) -> Any:
        self.requests += 1
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.TransportError as error:
            raise UpstreamError(self.name, 503, f"unreachable: {error!r}") from error
        if response.status_code >= 400:
            raise UpstreamError(self.name, response.status_code, response.text[:500])
        return response.json() if response.content else None

    async def aclose(self) -> None:
        await self.client.aclose()
