"""What the Bot API emulator's tests share: the token, two chats and a raw HTTP call."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.tg_emulator import TelegramEmulator

TOKEN = "123456:TEST-token"
USER = 5001
GROUP = -100500


async def raw(
    http: aiohttp.ClientSession,
    emu: TelegramEmulator,
    method: str,
    *,
    token: str = TOKEN,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    """POST (or GET with params=) one raw Bot API request; (status, JSON body)."""
    verb = "GET" if "params" in kwargs and "data" not in kwargs and "json" not in kwargs else "POST"
    async with http.request(verb, f"{emu.url}/bot{token}/{method}", **kwargs) as resp:
        return resp.status, await resp.json()
