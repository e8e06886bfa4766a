"""A local stand-in for SMSC's deferred-tasks API (`/sys/downloads.php`), for tests and demos."""

from bot.smsc.simulator.app import PATH, STATE_KEY, create_app
from bot.smsc.simulator.csvgen import iter_csv
from bot.smsc.simulator.scenario import demo_state
from bot.smsc.simulator.state import (
    FailedLogin,
    Fault,
    RequestRecord,
    SimTask,
    SimulatorState,
)

__all__ = [
    "PATH",
    "STATE_KEY",
    "FailedLogin",
    "Fault",
    "RequestRecord",
    "SimTask",
    "SimulatorState",
    "create_app",
    "demo_state",
    "iter_csv",
]
