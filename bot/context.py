"""Typed access to the application's shared objects from handlers and jobs.

PTB builds `BotData` itself (through `ContextTypes`); the runtime fills in `services` in the
start hook, so nothing is constructed at import time and handlers never cast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.telegram.pacing import SendOptions

if TYPE_CHECKING:
    import aiohttp

    import storage
    from bot.alerts.delivery import Deliverer
    from bot.alerts.watcher import Watcher
    from bot.clock import Clock
    from bot.metrics import Metrics
    from bot.runtime.leadership import Leadership
    from bot.runtime.resources import Runtime
    from bot.runtime.web import WebServer
    from bot.settings import Settings
    from bot.smsc.client import SmscClient
    from bot.telegram.documents import TaskFiles
    from bot.telegram.updates import UpdateIntake


@dataclass
class Services:
    """What handlers and jobs share for the application's lifetime."""

    settings: Settings
    clock: Clock
    http: aiohttp.ClientSession
    smsc: SmscClient
    db: storage.Database
    files: TaskFiles
    watcher: Watcher
    deliverer: Deliverer
    metrics: Metrics
    started_mono: float
    watching: bool = False  # the poll loop runs
    leadership: Leadership | None = None  # PostgreSQL replicas: who runs the watcher
    web: WebServer | None = None  # health, metrics and webhook server


class BotData:
    """`context.bot_data`: a typed holder instead of a dict."""

    def __init__(self) -> None:
        self._services: Services | None = None
        self.runtime: Runtime  # set by build_application
        self.updates: UpdateIntake  # set by build_application

    @property
    def services(self) -> Services:
        """The running services; only missing before start or after shutdown."""
        if self._services is None:
            raise RuntimeError("services are not running (application not started)")
        return self._services

    @services.setter
    def services(self, value: Services | None) -> None:
        self._services = value

    @property
    def running(self) -> bool:
        """Whether services are available."""
        return self._services is not None


class Context(CallbackContext[ExtBot[SendOptions], dict[Any, Any], dict[Any, Any], BotData]):
    """`context` in handlers and jobs, with typed `bot_data`."""


App: TypeAlias = Application[
    ExtBot[SendOptions], Context, dict[Any, Any], dict[Any, Any], BotData, JobQueue[Context]
]
