"""The delivery-fault tests' rig: a bot whose delivery passes run by hand, two chats subscribed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.delivery.support import CHATS, subscribe
from tests.fakes.rig import Rig, running_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A bot whose delivery passes the test runs by hand, with two subscribed chats."""
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        await subscribe(rig, *CHATS)
        yield rig
