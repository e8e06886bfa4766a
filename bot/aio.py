"""Small asyncio helpers shared across layers (the delivery loop, the lifecycle)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def wait_first(*aws: Awaitable[Any]) -> None:
    """Wait until one of `aws` is done, then cancel the others and let every one finish.

    Nothing is left pending (no "Task was destroyed but it is pending!" at loop close). What
    they return or raise is dropped: callers look at the state they were waiting for.
    """
    futures = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
