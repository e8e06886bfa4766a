"""Moved to ``bot.tg_emulator`` (the playground runs it); this shim keeps old imports working."""

import sys

from bot.tg_emulator import *  # noqa: F403
from bot.tg_emulator import __all__ as __all__
from bot.tg_emulator import entities, server, spec

# Alias the submodules too, so ``from tests.tg_emulator.server import X`` still resolves.
for _name, _module in (("entities", entities), ("server", server), ("spec", spec)):
    sys.modules[f"{__name__}.{_name}"] = _module
