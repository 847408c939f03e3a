"""The one typed client through which a service reaches another service's API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


class UpstreamError(RuntimeError):
    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail


@dataclass
class Traffic:
    """What one piece of work spent on its upstreams: requests made, response bytes received."""

    requests: int = 0
    bytes: int = 0


# a context variable, so the requests of one copy run count to it and to nothing running beside
# it: tasks it starts inherit it, a request handler on the same client does not
_TRAFFIC: ContextVar[Traffic | None] = ContextVar("upstream_traffic", default=None)


@contextlib.contextmanager
def metered() -> Iterator[Traffic]:
    """Count every upstream request made within the block, and the tasks it starts."""
    traffic = Traffic()
    token = _TRAFFIC.set(traffic)
    try:
        yield traffic
    finally:
        _TRAFFIC.reset(token)


def charge(spent: Traffic) -> None:
    """Count, to the work metered now, what was spent on its behalf under another meter."""
    traffic = _TRAFFIC.get()
    if traffic is not None:
        traffic.requests += spent.requests
        traffic.bytes += spent.bytes


def decoded(response: httpx.Response) -> Any:
    """A JSON answer's body, parsed by orjson: a big feed page parses in a fraction of the time."""
    return orjson.loads(response.content)


def bearer(token: str | None) -> dict[str, str]:
    """The headers that present `token`: none without one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


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
        client = httpx.AsyncClient(
            base_url=base_url, headers=bearer(token), transport=transport, timeout=timeout
        )
        return cls(name, client)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self._request("GET", path, params=params)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return decoded(await self.get(path, params))

    async def post_json(self, path: str, body: Mapping[str, Any] | list[Any]) -> Any:
        """POST `body`: one record, or a batch endpoint's list of them."""
        return await self._send("POST", path, body)

    async def put_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """PUT `body`; the owner's answer, or None when it answers 204 No Content."""
        return await self._send("PUT", path, body)

    async def _send(self, method: str, path: str, body: Mapping[str, Any] | list[Any]) -> Any:
        response = await self._request(method, path, json=body)
        return decoded(response) if response.content else None

    async def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The one place a request is made: counted, and an error answer raised."""
        self.requests += 1
        traffic = _TRAFFIC.get()
        if traffic is not None:
            traffic.requests += 1
        try:
            response = await self.client.request(method, path, **options)
        except httpx.TransportError as error:
            raise UpstreamError(self.name, 503, f"unreachable: {error!r}") from error
        if traffic is not None:
            traffic.bytes += len(response.content)
        if response.status_code >= 400:
            raise UpstreamError(self.name, response.status_code, response.text[:500])
        return response

    async def aclose(self) -> None:
        await self.client.aclose()
