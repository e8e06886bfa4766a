"""The catalogs and the Translator: complete Russian, no fuzzy entries, placeholders kept.

The .po files are read with Babel's own parser; the compiled catalogs are the ones the install
command built (`make catalogs-compile`), as the running bot loads them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

import storage
from bot.smsc.models import TaskStatus
from bot.texts.error_words import TEMPLATES, translate_error
from bot.texts.i18n import (
    LOCALES_DIR,
    SOURCE,
    CatalogMissingError,
    language_for_user,
    parse_language,
    translator,
)
from storage import open_database
from tests.fakes.storage_support import T0

PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
ROOT = Path(__file__).resolve().parents[2]


def catalog(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f)


def template() -> Catalog:
    with (LOCALES_DIR / "messages.pot").open("rb") as f:
        return read_po(f)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def tags(text: str) -> list[str]:
    return sorted(re.findall(r"</?(?:b|i|u|s|code|pre|a)\b[^<>]*>", text))


def catalog_problems(cat: Catalog) -> list[str]:
    """Every missing translation, fuzzy entry and placeholder or tag mismatch in `cat`."""
    problems = []
    for message in cat:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if not all(strings) or (len(strings) < cat.num_plurals and len(ids) > 1):
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        for string in strings:
            if placeholders(string) != placeholders(ids[-1]):
                problems.append(f"placeholders differ: {ids[0]!r} -> {string!r}")
            if tags(string) != tags(ids[-1]):
                problems.append(f"tags differ: {ids[0]!r} -> {string!r}")
    return problems


def test_russian_catalog_is_complete_and_exact() -> None:
    assert catalog_problems(catalog("ru")) == []


def test_the_check_catches_what_it_must() -> None:
    cat = Catalog(locale="ru")
    cat.add("Task {id}", "Задача")  # placeholder lost
    cat.add("Export failed: {task}", "")  # missing
    cat.add("Status", "Состояние", flags=["fuzzy"])
    cat.add(("{n} row", "{n} rows"), ("{n} строка", "{n} строки", "{count} строк"))
    found = catalog_problems(cat)
    assert any("placeholders differ: 'Task {id}'" in p for p in found)
    assert any("untranslated: 'Export failed: {task}'" in p for p in found)
    assert any("fuzzy: 'Status'" in p for p in found)
    assert any("placeholders differ: '{n} row'" in p for p in found)


def test_catalogs_hold_every_extracted_text() -> None:
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in template() if m.id}
    for language in ("ru", "en"):
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(language) if m.id}
        assert wanted <= have, (language, sorted(wanted - have)[:5])
    assert len(wanted) > 120


def test_the_template_is_up_to_date(tmp_path: Path) -> None:
    # A text added in the code but not extracted would be English in every language.
    out = tmp_path / "messages.pot"
    subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
            "-k", "N_", "--no-location", "--sort-output", "-o", str(out), ".",
        ],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    with out.open("rb") as f:
        fresh = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    committed = {m.id if isinstance(m.id, str) else m.id[0] for m in template() if m.id}
    assert fresh == committed


def test_compiled_catalogs_are_built_not_committed() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "bot/locales"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [name for name in listed if name.endswith(".mo")]
    for language in ("ru", "en"):
        assert (LOCALES_DIR / language / "LC_MESSAGES" / "messages.mo").is_file()


def test_a_missing_compiled_catalog_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.texts import i18n

    monkeypatch.setattr(i18n, "LOCALES_DIR", Path("/nonexistent"))
    with pytest.raises(CatalogMissingError, match="make catalogs-compile"):
        i18n.check_catalogs()


def test_russian_words_and_formats() -> None:
    t = translator("ru")
    assert t.format_size(int(2.5 * 1024 * 1024)) == "2,5 МБ"
    assert t.format_size(512) == "512 Б"
    assert t.format_duration(timedelta(minutes=3, seconds=20)) == "3 мин 20 с"
    assert t.format_duration(timedelta(hours=2, minutes=5)) == "2 ч 05 мин"
    assert [t.status(s) for s in TaskStatus] == [
        "ожидает",
        "выполняется",
        "завершено",
        "отменено",
        "ошибка",
    ]
    assert t.clock(datetime(2026, 12, 2, 9, 3, 15, tzinfo=UTC)) == "12:03:15 МСК"


@pytest.mark.parametrize(
    ("n", "word"), [(1, "задача"), (2, "задачи"), (5, "задач"), (11, "задач"), (21, "задача")]
)
def test_russian_plural_forms(n: int, word: str) -> None:
    text = translator("ru").ngettext(
        "Task list: as of {time} ({ago}), {n} task",
        "Task list: as of {time} ({ago}), {n} tasks",
        n,
    )
    assert text.endswith("{n} " + word)


def test_english_source_and_catalog_agree() -> None:
    en = translator("en")
    assert en.format_size(int(2.5 * 1024 * 1024)) == SOURCE.format_size(int(2.5 * 1024 * 1024))
    assert en.format_size(int(2.5 * 1024 * 1024)) == "2.5 MB"
    assert en.format_duration(timedelta(seconds=200)) == "3 min 20 s"
    assert en.status(TaskStatus.RUNNING) == "in progress"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SMSC answered HTTP 502", "SMSC ответил HTTP 502"),
        (
            "SMSC answered error 9 (too many requests); next try in 3 min",
            "SMSC ответил ошибкой 9 (слишком много запросов); следующая попытка через 3 мин",
        ),
        (
            "SMSC has blocked this server's IP address (error 4); next attempt in 40 s",
            "SMSC заблокировал IP-адрес этого сервера (ошибка 4); следующая попытка через 40 с",
        ),
        ("Could not connect to SMSC", "Не удалось подключиться к SMSC"),
        ("something SMSC itself said", "something SMSC itself said"),  # not ours: as it is
    ],
)
def test_our_smsc_error_texts_are_translated(text: str, expected: str) -> None:
    assert translate_error(text, translator("ru")) == expected
    assert translate_error(text, translator("en")) == text


def test_every_error_template_has_a_russian_translation() -> None:
    ru = translator("ru")
    assert all(ru.gettext(template) != template for template in TEMPLATES)


@pytest.mark.parametrize(
    ("code", "language"),
    [("ru", "ru"), ("ru-RU", "ru"), ("RU", "ru"), ("en", "en"), ("uk", "en"), (None, "en")],
)
def test_a_users_language_code(code: str | None, language: str) -> None:
    assert language_for_user(code) == language


@pytest.mark.parametrize("word", ["", "fr", "русский", "r", "ru\u0000", "x" * 300])
def test_unknown_language_words_are_refused(word: str) -> None:
    assert parse_language(word) is None


async def test_chat_language_is_stored_and_forgotten(tmp_path: Path) -> None:
    conn = await open_database(tmp_path / "db.sqlite3")
    try:
        assert await storage.get_chat_language(conn, 5) is None
        await storage.set_chat_language(conn, 5, "ru", T0)
        await storage.set_chat_language(conn, -7, "en", T0)
        await storage.set_chat_language(conn, 5, "en", T0)  # a second choice replaces the first
        assert await storage.get_chat_language(conn, 5) == "en"
        assert await storage.get_chat_language(conn, -7) == "en"
        await storage.set_chat_language(conn, 5, None, T0)
        assert await storage.get_chat_language(conn, 5) is None
    finally:
        await storage.close_database(conn)


def test_the_russian_readme_mirrors_the_english_one() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    russian = (ROOT / "README.ru.md").read_text(encoding="utf-8")
    assert "(README.ru.md)" in english
    assert "(README.md)" in russian
    # The same sections, tables and settings: a section added to one shows up missing here.
    assert english.count("\n## ") == russian.count("\n## ")
    assert english.count("\n| ") == russian.count("\n| ")
    assert re.findall(
        r"`([A-Z][A-Z_]{3,})`", english.split("## Configuration")[1].split("##")[0]
    ) == (re.findall(r"`([A-Z][A-Z_]{3,})`", russian.split("## Настройка")[1].split("##")[0]))


def test_the_bot_refuses_to_start_without_its_compiled_catalogs(tmp_path: Path) -> None:
    # A checkout where the install step did not run: no .mo files next to the .po files.
    code = tmp_path / "code"
    for package in ("bot", "handlers", "storage"):
        shutil.copytree(ROOT / package, code / package, ignore=shutil.ignore_patterns("*.mo"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SMSC_"))},
        "PYTHONPATH": str(code),
        "TELEGRAM_BOT_TOKEN": "123456:AAAA-secret-token",
        "SMSC_LOGIN": "x",
        "SMSC_PASSWORD": "y",
        "TELEGRAM_API_URL": "http://127.0.0.1:9",  # never reached
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "message catalog is missing" in lines[0]
    assert "make catalogs-compile" in lines[0]
