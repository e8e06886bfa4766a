"""The bot's two languages: gettext catalogs (Babel) and locale formatting, bound per reply.

Every renderer takes a `Translator` for the chat it writes to; nothing holds a "current
language". The English texts are the catalogs' msgids; `bot/locales/<lang>/LC_MESSAGES/messages.mo`
is compiled from the committed `.po` by `make install` (`make catalogs-compile`), and a missing one
stops the bot at start (`check_catalogs`) instead of quietly speaking English.
"""

from __future__ import annotations

import functools
import gettext
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from babel import Locale
from babel.numbers import format_decimal

from bot.smsc.etiquette import round_up_seconds
from bot.smsc.models import SMSC_TZ, TaskStatus

Language = Literal["en", "ru"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "ru")
DEFAULT_LANGUAGE: Final[Language] = "en"
LOCALES_DIR: Final = Path(__file__).parent.parent / "locales"
DOMAIN: Final = "messages"


def N_(text: str) -> str:
    """Mark a text for the catalog without translating it here (it is translated when shown)."""
    return text


_STATUS_WORDS: Final = {
    TaskStatus.PENDING: N_("pending"),
    TaskStatus.RUNNING: N_("in progress"),
    TaskStatus.COMPLETED: N_("completed"),
    TaskStatus.CANCELED: N_("canceled"),
    TaskStatus.FAILED: N_("failed"),
}
_LANGUAGE_NAMES: Final[dict[Language, str]] = {"en": N_("English"), "ru": N_("Russian")}


class CatalogMissingError(RuntimeError):
    """A compiled catalog is absent: the install step (`make catalogs-compile`) did not run."""


def parse_language(value: str | None) -> Language | None:
    """`ru`/`en` (any case, any region: `ru-RU`, `en_GB`) as a language we speak, else None."""
    if not value:
        return None
    head = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return "ru" if head == "ru" else "en" if head == "en" else None


def language_for_user(language_code: str | None) -> Language:
    """A Telegram user's `language_code`: `ru*` is Russian, anything else English."""
    return "ru" if parse_language(language_code) == "ru" else "en"


def _mo_path(language: Language) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"


def check_catalogs() -> None:
    """Raise CatalogMissingError naming the first language whose compiled catalog is missing."""
    for language in LANGUAGES:
        if not _mo_path(language).is_file():
            raise CatalogMissingError(
                f"the compiled {language} message catalog is missing ({_mo_path(language)}); "
                "run `make catalogs-compile` (make install does it)"
            )


@dataclass(frozen=True, slots=True)
class Translator:
    """One language: its catalog and its locale's number formats."""

    language: Language
    _catalog: gettext.NullTranslations
    _locale: Locale

    def gettext(self, message: str) -> str:
        """The translation of `message` (itself when the catalog has none)."""
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for `n` (Russian has three)."""
        return self._catalog.ngettext(singular, plural, n)

    def number(self, value: float, pattern: str | None = None) -> str:
        """A number as the locale writes it ("1,234" / "1 234", "2.5" / "2,5")."""
        return format_decimal(value, format=pattern, locale=self._locale)

    def status(self, status: TaskStatus) -> str:
        """A task status in words."""
        return self.gettext(_STATUS_WORDS[status])

    def format_size(self, size: int) -> str:
        """A byte count for people: "512 B", "2.5 MB" (a decimal comma in Russian)."""
        _ = self.gettext
        value = float(size)
        units = (_("{n} B"), _("{n} KB"), _("{n} MB"), _("{n} GB"))
        for index, unit in enumerate(units):
            if value < 1024 or index == len(units) - 1:
                if index == 0:
                    return unit.format(n=self.number(int(value)))
                return unit.format(n=self.number(value, "0.0"))
            value /= 1024
        raise AssertionError("unreachable")

    def format_duration(self, delta: timedelta) -> str:
        """A duration: "2 h 05 min", "3 min 20 s", "40 s"."""
        seconds = max(0, int(delta.total_seconds()))
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return self.gettext("{hours} h {minutes} min").format(
                hours=self.number(hours), minutes=f"{minutes:02d}"
            )
        if minutes:
            return self.gettext("{minutes} min {seconds} s").format(
                minutes=minutes, seconds=f"{secs:02d}"
            )
        return self.gettext("{seconds} s").format(seconds=secs)

    def format_wait(self, seconds: float) -> str:
        """A wait as people read it: "40 s", "10 min" (rounded up)."""
        whole = round_up_seconds(seconds)
        if whole < 120:
            return self.gettext("{seconds} s").format(seconds=whole)
        return self.gettext("{minutes} min").format(minutes=math.ceil(whole / 60))

    def clock(self, moment: datetime) -> str:
        """A time of day in SMSC's zone: "12:03:15 MSK"."""
        return self.gettext("{time} MSK").format(time=f"{moment.astimezone(SMSC_TZ):%H:%M:%S}")

    def format_when(self, moment: datetime) -> str:
        """A date and time in SMSC's zone: "02.12.2026 12:03:15 MSK"."""
        return self.gettext("{time} MSK").format(
            time=f"{moment.astimezone(SMSC_TZ):%d.%m.%Y %H:%M:%S}"
        )

    def language_name(self, language: Language) -> str:
        """A language's own name, as this language writes it ("English", "русский")."""
        return self.gettext(_LANGUAGE_NAMES[language])


@functools.cache
def translator(language: Language) -> Translator:
    """The translator for `language`, loaded once (CatalogMissingError if it is not compiled)."""
    try:
        catalog = gettext.translation(DOMAIN, LOCALES_DIR, languages=[language])
    except FileNotFoundError as err:
        raise CatalogMissingError(
            f"the compiled {language} message catalog is missing ({_mo_path(language)}); "
            "run `make catalogs-compile` (make install does it)"
        ) from err
    return Translator(language, catalog, Locale.parse(language))


# The English source texts, for callers that have no chat to speak to (and the tests).
SOURCE: Final = Translator("en", gettext.NullTranslations(), Locale.parse("en"))
