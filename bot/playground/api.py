"""The playground's web server routes: the page, its JSON API and the live event stream.

Everything the page does goes through this API, so scripts can drive the demo too (see the
README's "Playground" section). Bad input answers 4xx with {"error": "..."}, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from bot.playground import world
from bot.playground.controls import BadInputError, task_json
from bot.tg_emulator import utf16_len

if TYPE_CHECKING:
    from bot.playground.runner import Playground

JSON = dict[str, Any]
STATIC = Path(__file__).with_name("static")
PLAYGROUND: web.AppKey[Playground] = web.AppKey("playground")
CLOSING = web.AppKey("playground_closing", asyncio.Event)
MAX_TEXT = 4096  # Telegram's limit for a message, in UTF-16 code units
KEEPALIVE_SECONDS = 15.0
# The page loads nothing from elsewhere: no CDN, no fonts, no analytics.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
NO_CACHE = {"Cache-Control": "no-cache"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _pg(request: web.Request) -> Playground:
    return request.app[PLAYGROUND]


async def _body(request: web.Request) -> JSON:
    try:
        data = json.loads(await request.read())
    except ValueError:  # also UnicodeDecodeError
        raise BadInputError("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadInputError("the body must be a JSON object")
    return data


def _int(raw: str, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadInputError(f"{what}: an integer") from None
    if abs(value) >= 2**53:  # what JSON numbers (and the page) hold exactly
        raise BadInputError(f"{what}: out of range")
    return value


def _guarded(handler: Handler) -> Handler:
    """Map bad input to 400 and unknown things to 404, with a message saying which."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadInputError as err:
            return _error(400, str(err))
        except KeyError:
            raise  # a bug, not a missing thing: let aiohttp log it and answer 500
        except LookupError as err:
            return _error(404, str(err.args[0]) if err.args else "not found")

    return wrapper


def _thread_of(message: JSON) -> int | None:
    return message.get("message_thread_id") if message.get("is_topic_message") else None


# ---- the page ---------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    """The web chat."""
    return web.FileResponse(
        STATIC / "index.html", headers={**NO_CACHE, "Content-Security-Policy": CSP}
    )


# ---- chats ------------------------------------------------------------------------------


async def state(request: web.Request) -> web.StreamResponse:
    """Everything the page needs to draw itself; then it follows /api/events."""
    pg = _pg(request)
    settings = pg.settings
    return web.json_response(
        {
            "bot": pg.emu.bot_user,
            "conversations": [c.as_json() for c in world.CONVERSATIONS],
            "commands": pg.emu.commands,
            "last_event_id": pg.feed.last_id,
            "poll_interval": settings.poll_interval if settings else None,
            "smsc": pg.controls.snapshot(),
        }
    )


async def chats(request: web.Request) -> web.StreamResponse:
    """The chats (and forum topics) the visitor can type in."""
    return web.json_response({"conversations": [c.as_json() for c in world.CONVERSATIONS]})


def _chat_id(request: web.Request) -> int:
    chat_id = _int(request.match_info["chat_id"], "chat id")
    if not world.known_chat(chat_id):
        raise LookupError(f"no chat {chat_id} in the playground")
    return chat_id


async def list_messages(request: web.Request) -> web.StreamResponse:
    """A chat's messages, the visitor's and the bot's (?thread_id=N: one topic, 0: outside)."""
    chat_id = _chat_id(request)
    messages = _pg(request).emu.messages(chat_id, include_users=True)
    raw = request.query.get("thread_id")
    if raw is not None:
        thread = _int(raw, "thread_id") or None
        messages = [m for m in messages if _thread_of(m) == thread]
    return web.json_response({"messages": messages})


async def send_message(request: web.Request) -> web.StreamResponse:
    """Type a message as the chat's user: {"text": "/tasks", "thread_id": 12?, "language_code"?}.

    `language_code` is the demo user's Telegram app language (the page's language switch).
    """
    pg = _pg(request)
    chat_id = _chat_id(request)
    body = await _body(request)
    unknown = set(body) - {"text", "thread_id", "language_code"}
    if unknown:
        raise BadInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("text: a non-empty string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError("text: not valid Unicode (a lone surrogate?)") from None
    if utf16_len(text) > MAX_TEXT:
        raise BadInputError(f"text: at most {MAX_TEXT} characters, as Telegram allows")
    thread = body.get("thread_id")
    if thread is not None and (isinstance(thread, bool) or not isinstance(thread, int)):
        raise BadInputError("thread_id: an integer or null")
    language = _language_code(body)
    conv = world.find_conversation(chat_id, thread)
    if conv is None:
        raise LookupError(f"chat {chat_id} has no topic {thread}")
    update = pg.emu.send_message(
        chat_id,
        text,
        language_code=language,
        user_id=conv.user.id,
        chat_type=conv.chat_type,
        message_thread_id=thread,
        username=conv.user.username,
        title=world.GROUP_TITLE if conv.chat_type != "private" else None,
    )
    message = update["message"]
    pg.feed.publish({"type": "message", "message": message})
    return web.json_response({"message": message}, status=201)


def _language_code(body: JSON) -> str:
    """The `language_code` field: a short IETF tag like Telegram's ("en", "ru"); "en" if absent."""
    value = body.get("language_code", "en")
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?", value):
        raise BadInputError('language_code: a language tag such as "en" or "ru"')
    return value


def _button_data(message: JSON, body: JSON) -> str:
    unknown = set(body) - {"data", "text", "language_code"}
    if unknown:
        raise BadInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    data, text = body.get("data"), body.get("text")
    if data is not None:
        if not isinstance(data, str):
            raise BadInputError("data: a string")
        return data
    if not isinstance(text, str):
        raise BadInputError('give "data" (the callback data) or "text" (the button label)')
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for row in rows:
        for button in row:
            if button.get("text") == text:
                if "callback_data" not in button:
                    raise BadInputError(f"the button {text!r} is not a callback button")
                return str(button["callback_data"])
    raise LookupError(f"message {message['message_id']} has no button {text!r}")


async def press_button(request: web.Request) -> web.StreamResponse:
    """Press an inline button: {"text": "Older ▶"} or {"data": "<callback_data>"}."""
    pg = _pg(request)
    chat_id = _chat_id(request)
    message_id = _int(request.match_info["message_id"], "message id")
    body = await _body(request)
    found = [m for m in pg.emu.messages(chat_id) if m["message_id"] == message_id]
    if not found:
        raise LookupError(f"no message {message_id} from the bot in chat {chat_id}")
    message = found[0]
    data = _button_data(message, body)
    conv = world.find_conversation(chat_id, _thread_of(message)) or world.find_conversation(
        chat_id, None
    )
    user = conv.user if conv is not None else None
    update = pg.emu.press_button(
        chat_id,
        message_id,
        data,
        user_id=user.id if user else None,
        username=user.username if user else None,
        language_code=_language_code(body),
        check_button=True,  # the page presses real buttons; forged data is refused
    )
    query_id = str(update["callback_query"]["id"])
    pg.feed.remember_callback(query_id, chat_id)
    return web.json_response({"callback_query_id": query_id})


async def download(request: web.Request) -> web.StreamResponse:
    """A document the bot sent, byte for byte as it uploaded it."""
    pg = _pg(request)
    file_id = request.match_info["file_id"]
    content = pg.emu.documents.get(file_id)
    if content is None:
        raise LookupError("no such file")
    info = pg.feed.files.get(file_id)
    name = info.file_name if info else "document"
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    return web.Response(
        body=content,
        content_type=info.mime_type if info else "application/octet-stream",
        headers={"Content-Disposition": disposition},
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: every change in the chats (?after=N: those after event N)."""
    pg = _pg(request)
    # A reconnecting EventSource sends the last id it saw, newer than the URL's ?after=.
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    after = pg.feed.last_id if raw is None else _int(raw, "after")
    closing = request.app[CLOSING]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    try:
        await response.write(b"retry: 2000\n\n")
        while not closing.is_set():
            fresh = pg.feed.since(after)
            # Away too long, or ids from before a restart: the page reloads its chats.
            if fresh is None or after > pg.feed.last_id:
                await response.write(b"event: reload\ndata: {}\n\n")
                after = pg.feed.last_id
                continue
            for event in fresh:
                await response.write(f"id: {event.id}\ndata: {json.dumps(event.data)}\n\n".encode())
                after = event.id
            if not fresh:
                await response.write(b": keep-alive\n\n")
            await pg.feed.wait(after, KEEPALIVE_SECONDS)
        await response.write(b"event: stopping\ndata: {}\n\n")
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    return response


# ---- the simulated SMSC -------------------------------------------------------------------


async def smsc(request: web.Request) -> web.StreamResponse:
    """The simulated account: tasks (newest first) and the fault in force."""
    return web.json_response(_pg(request).controls.snapshot())


async def add_task(request: web.Request) -> web.StreamResponse:
    """Create a task: {"name": "...", "status"?: "pending", "size_mb"?: 60, "rows"?: 500}."""
    task = _pg(request).controls.add_task(await _body(request))
    return web.json_response({"task": task_json(task)}, status=201)


async def change_task(request: web.Request) -> web.StreamResponse:
    """Change a task: {"status"?: "completed"|"failed"|"canceled"|..., "size_mb"?: 60}."""
    task_id = _int(request.match_info["task_id"], "task id")
    task = _pg(request).controls.change_task(task_id, await _body(request))
    return web.json_response({"task": task_json(task)})


async def set_fault(request: web.Request) -> web.StreamResponse:
    """Make SMSC misbehave until cleared: {"kind": "http_500"|"error_9"|...}."""
    body = await _body(request)
    fault = _pg(request).controls.set_fault(body.get("kind"))
    return web.json_response({"fault": {"kind": fault.key, "label": fault.label}})


async def clear_fault(request: web.Request) -> web.StreamResponse:
    """SMSC behaves again."""
    _pg(request).controls.clear_fault()
    return web.json_response({"fault": None})


async def not_found(request: web.Request) -> web.StreamResponse:
    """Unknown API paths answer JSON too."""
    return _error(404, f"no such API: {request.method} {request.path}")


def add_routes(app: web.Application, pg: Playground) -> None:
    """Mount the page and the API on the bot's own web app (next to /healthz and /metrics)."""
    app[PLAYGROUND] = pg
    closing = asyncio.Event()
    app[CLOSING] = closing

    async def on_shutdown(_: web.Application) -> None:
        closing.set()
        pg.feed.publish({"type": "stopping"})  # wakes every open event stream

    app.on_shutdown.append(on_shutdown)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/", index),
        ("GET", "/api/state", state),
        ("GET", "/api/chats", chats),
        ("GET", "/api/chats/{chat_id}/messages", list_messages),
        ("POST", "/api/chats/{chat_id}/messages", send_message),
        ("POST", "/api/chats/{chat_id}/messages/{message_id}/press", press_button),
        ("GET", "/api/files/{file_id}", download),
        ("GET", "/api/events", events),
        ("GET", "/api/smsc", smsc),
        ("POST", "/api/smsc/tasks", add_task),
        ("PATCH", "/api/smsc/tasks/{task_id}", change_task),
        ("PUT", "/api/smsc/fault", set_fault),
        ("DELETE", "/api/smsc/fault", clear_fault),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(handler))
    app.router.add_static("/static/", STATIC, append_version=False)
    app.router.add_route("*", "/api/{tail:.*}", not_found)
