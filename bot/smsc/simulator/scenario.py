"""The scripted demo account: a few finished exports, a few in motion, and new ones over time."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, TaskStatus
from bot.smsc.simulator.state import SimTask, SimulatorState

FIRST_ID = 40101
SPAWN_EVERY = 180.0  # a new export every 3 minutes keeps a demo bot's alerts busy
BIG_FILE_BYTES = 60_000_000  # above Telegram's 50 MB bot upload limit, on purpose


def _spawn(state: SimulatorState, due: float) -> None:
    """Create the next recurring export as if it had been created at `due`."""
    task_id = state.next_id()
    number = task_id - FIRST_ID + 1
    created = state.wall_text(due)
    task = state.add_task(
        SimTask(
            id=task_id,
            name=f"Автовыгрузка №{number} ({created[:10]})",
            created=created,
            file=f"auto_{task_id}.csv",
            rows=200 + 37 * number,
        )
    )
    # Negative delays are fine: when the state is ticked late these are already due.
    now = state.clock.monotonic()
    state.schedule(due + 15 - now, task.id, TaskStatus.RUNNING)
    final = TaskStatus.FAILED if number % 4 == 0 else TaskStatus.COMPLETED
    state.schedule(due + 60 - now, task.id, final)


def demo_state(
    clock: Clock,
    *,
    login: str = "demo",
    password: str = "demo",  # noqa: S107 - the simulator's documented demo account
    apikey: str | None = None,
) -> SimulatorState:
    """Build the demo account the CLI serves: 8 tasks and a new export every 3 minutes."""
    state = SimulatorState(clock, login=login, password=password, apikey=apikey)
    state.keep_requests = 10_000  # a demo may run for days: keep memory bounded
    now = clock.now()

    def ago(**delta: float) -> str:
        return (now - timedelta(**delta)).astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT)

    done = TaskStatus.COMPLETED
    for task in (
        SimTask(
            FIRST_ID,
            "Рассылка октябрь",
            done,
            created=ago(days=24, hours=3),
            time=ago(days=24, hours=3, minutes=-1),
            file="rassylka_oktyabr.csv",
            rows=1200,
        ),
        SimTask(
            FIRST_ID + 1,
            "Export 2026-11 <weekly> & co",
            done,
            created=ago(days=6, hours=5),
            time=ago(days=6, hours=5, minutes=-2),
            file="export_2026-11_weekly.csv",
            rows=350,
        ),
        SimTask(
            FIRST_ID + 2,
            "Выгрузка за сентябрь, часть 2",
            done,
            created=ago(days=3, hours=1),
            time=ago(days=3, hours=1, minutes=-1),
            file="vygruzka_sentyabr_2.csv",
            rows=800,
            encoding="cp1251",
        ),
        SimTask(
            FIRST_ID + 3,
            'Отчёт "VIP-клиенты"',
            TaskStatus.FAILED,
            created=ago(days=2),
            time=ago(days=2, minutes=-1),
            file="otchet_vip.csv",
        ),
        SimTask(
            FIRST_ID + 4,
            "Архив за год (большой файл)",
            done,
            created=ago(days=1, hours=2),
            time=ago(days=1, hours=2, minutes=-3),
            file="arhiv_2026.csv",
            size_bytes=BIG_FILE_BYTES,
        ),
        SimTask(FIRST_ID + 5, "Black Friday campaign", file="black_friday.csv", rows=2500),
        SimTask(FIRST_ID + 6, "Акция «Новый год»", file="akciya_novyi_god.csv"),
        SimTask(FIRST_ID + 7, "Тестовая выгрузка", file="test.csv", rows=10),
    ):
        state.add_task(task)

    state.schedule(30, FIRST_ID + 5, TaskStatus.RUNNING)
    state.schedule(90, FIRST_ID + 5, TaskStatus.COMPLETED)
    state.schedule(20, FIRST_ID + 6, TaskStatus.RUNNING)
    state.schedule(75, FIRST_ID + 6, TaskStatus.FAILED)
    state.schedule(45, FIRST_ID + 7, TaskStatus.CANCELED)
    state.repeat(SPAWN_EVERY, _spawn)
    return state
