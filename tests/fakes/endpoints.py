"""GET the running bot's own HTTP endpoints (/healthz, /readyz, /metrics) from an e2e test."""

from __future__ import annotations

import aiohttp

from tests.fakes.rig import Rig


async def get_endpoint(rig: Rig, path: str) -> tuple[int, str]:
    """GET `path` on the rig's web server; return (status, body)."""
    web = rig.services.web
    assert web is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{web.port}{path}") as resp,
    ):
        return resp.status, await resp.text()
