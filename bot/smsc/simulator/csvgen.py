# ruff: noqa: RUF001 - the sample messages are Russian on purpose, Cyrillic is not a typo
"""Task files that look like SMSC's exports of sent messages, generated on the fly.

A file is a header plus rows cycled from a pool built once per request from `random.Random(id)`,
so the bytes are the same on every download, generation costs a memcpy per byte rather than a
random call, and a multi-gigabyte file needs no more memory than one chunk.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ

if TYPE_CHECKING:
    from bot.smsc.simulator.state import SimTask

HEADER = ("phone", "message", "status", "sent_at", "cost")
POOL_SIZE = 509  # rows before the pattern repeats; prime so it does not line up with chunks

_FIRST_NAMES = ("Анна", "Сергей", "Ольга", "Дмитрий", "Екатерина", "Иван", "Мария", "Алексей")
# Some texts carry ';', '"' and a line break so a parser that ignores CSV quoting breaks.
_MESSAGES = (
    "Ваш код подтверждения: {code}. Никому его не сообщайте.",
    "Здравствуйте, {first}! Заказ №{order} передан в службу доставки.",
    'Скидка 20% на всё до воскресенья, промокод "ОСЕНЬ{code}"',
    'Магазин "Ромашка": заказ №{order} готов к выдаче; ждём вас до 21:00.',
    "Напоминаем о записи {day}.11 в {hour}:00, кабинет {room}.",
    "Баланс пополнен на {amount} руб. Спасибо, что вы с нами!",
    "Код: {code}\nНе сообщайте его никому, даже сотрудникам банка.",
    "{first}, ваша посылка прибыла в пункт выдачи; срок хранения 7 дней.",
    "Your verification code is {code}",
    "Order #{order} has been shipped, track it in the app.",
)
_STATUSES = (
    ("Доставлено", 14),
    ("Прочитано", 3),
    ("Передано оператору", 2),
    ("Не доставлено", 2),
    ("Просрочено", 1),
)
_COSTS = ("1.85", "1.85", "1.85", "2.10", "3.70", "0.00")
_BASE_TIME = datetime(2026, 10, 1, 8, 0, tzinfo=SMSC_TZ)


def _render(rows: list[tuple[str, ...]], encoding: str) -> list[bytes]:
    out: list[bytes] = []
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    for row in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow(row)
        out.append(buf.getvalue().encode(encoding, errors="replace"))
    return out


def _pool(task_id: int, encoding: str) -> tuple[bytes, list[bytes]]:
    rng = random.Random(task_id)  # noqa: S311 - test data, determinism is the point
    statuses = [s for s, _ in _STATUSES]
    weights = [w for _, w in _STATUSES]
    rows: list[tuple[str, ...]] = []
    for _ in range(POOL_SIZE):
        text = rng.choice(_MESSAGES).format(
            code=rng.randrange(1000, 10000),
            first=rng.choice(_FIRST_NAMES),
            order=rng.randrange(100_000, 1_000_000),
            day=rng.randrange(1, 31),
            hour=rng.randrange(9, 20),
            room=rng.randrange(100, 420),
            amount=rng.choice((100, 300, 500, 1000, 1500)),
        )
        sent = _BASE_TIME + timedelta(seconds=rng.randrange(30 * 24 * 3600))
        rows.append(
            (
                f"79{rng.randrange(10**9):09d}",
                text,
                rng.choices(statuses, weights)[0],
                sent.strftime(SMSC_TIME_FORMAT),
                rng.choice(_COSTS),
            )
        )
    header = _render([HEADER], encoding)[0]
    return header, _render(rows, encoding)


def _pieces(task: SimTask) -> Iterator[bytes]:
    header, pool = _pool(task.id, task.encoding)
    block = b"".join(pool)
    yield header
    if task.size_bytes is not None:
        remaining = task.size_bytes - len(header)
        for _ in range(max(remaining, 0) // len(block)):
            yield block
        remaining -= max(remaining, 0) // len(block) * len(block)
        i = 0
        while remaining > 0:
            row = pool[i % len(pool)]
            yield row
            remaining -= len(row)
            i += 1
        return
    full, rest = divmod(max(task.rows, 0), len(pool))
    for _ in range(full):
        yield block
    yield from pool[:rest]


def iter_csv(task: SimTask, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """Yield the task file in chunks of `chunk_size` bytes (the last may be shorter)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if task.content is not None:
        view = memoryview(task.content)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    buf = bytearray()
    for piece in _pieces(task):
        buf += piece
        while len(buf) >= chunk_size:
            yield bytes(buf[:chunk_size])
            # Deleting from the front of a bytearray is O(1) in CPython, so this stays linear.
            del buf[:chunk_size]
    if buf:
        yield bytes(buf)
