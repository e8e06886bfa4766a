"""SMSC's answer shapes for `fmt` 0..3, exactly as the API page prints them."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from bot.smsc.simulator.state import SimTask, StatusAs

ERROR_DESCRIPTIONS = {
    1: "parameters error",
    2: "authorise error",
    4: "IP is temporarily blocked",
    5: "task or file not found",
    9: "duplicate request, wait a minute",
}
CONCURRENT_DESCRIPTION = "too many concurrent requests"

CONTENT_TYPES = {0: "text/plain", 1: "text/plain", 2: "text/xml", 3: "application/json"}


def _xml(text: str) -> str:
    return html.escape(text, quote=False)


def render_error(code: int, fmt: int, description: str | None = None) -> str:
    """Return SMSC's error answer for `code` in format `fmt`."""
    desc = description or ERROR_DESCRIPTIONS.get(code, "unknown error")
    if fmt == 1:
        return f"0,-{code}"
    if fmt == 2:
        return f"<result>\n<error>{_xml(desc)}</error>\n<error_code>{code}</error_code>\n</result>"
    if fmt == 3:
        return json.dumps({"error": desc, "error_code": code}, ensure_ascii=False)
    return f"ERROR = {code} ({desc})"


def render_list(
    tasks: Sequence[SimTask],
    fmt: int,
    status_as: StatusAs = "number",
    raw_items: Sequence[str] = (),
) -> str:
    """Return a get_list answer for `tasks` in format `fmt`; names are printed as is.

    `raw_items` (JSON texts, fmt=3 only) go in front of the tasks, exactly as given.
    """
    if fmt == 3 and raw_items:
        inner = render_list(tasks, fmt, status_as)[1:-1]
        return "[" + ", ".join([*raw_items, *([inner] if inner else [])]) + "]"
    if fmt == 1:
        return "\n".join(
            f"{t.id},{t.name},{int(t.status)},{t.created},{t.time},{t.file}" for t in tasks
        )
    if fmt == 2:
        parts = ["<list>"]
        for t in tasks:
            parts.append("<task>")
            parts.extend(
                f"<{tag}>{_xml(str(value))}</{tag}>"
                for tag, value in (
                    ("id", t.id),
                    ("name", t.name),
                    ("status", int(t.status)),
                    ("created", t.created),
                    ("time", t.time),
                    ("file", t.file),
                )
            )
            parts.append("</task>")
        parts.append("</list>")
        return "\n".join(parts)
    if fmt == 3:
        return json.dumps(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "status": str(int(t.status)) if status_as == "string" else int(t.status),
                    "created": t.created,
                    "time": t.time,
                    "file": t.file,
                }
                for t in tasks
            ],
            ensure_ascii=False,
        )
    return "\n".join(
        f"id = {t.id}, name = {t.name}, status = {int(t.status)}, created = {t.created}, "
        f"time = {t.time}, file = {t.file}"
        for t in tasks
    )


HTML_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="ru">
<head><meta charset="utf-8"><title>SMS Центр — вход в личный кабинет</title></head>
<body>
<form method="post" action="/login/">
<label>Логин <input name="login"></label>
<label>Пароль <input name="psw" type="password"></label>
<button type="submit">Войти</button>
</form>
</body>
</html>
"""

HTML_500_PAGE = """<html>
<head><title>500 Internal Server Error</title></head>
<body><center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body>
</html>
"""

GARBAGE_BODY = b"\x00\x1f\x8b OK?? id=;;status\xff\xfe<<partial"
