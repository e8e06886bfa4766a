"""A local Telegram Bot API emulator for end-to-end tests of the bot (see server.py)."""

from .entities import EntityParseError, ParsedText, find_bot_commands, parse_html, utf16_len
from .server import ApiFailure, Call, TelegramEmulator, WaitTimeoutError
from .spec import ApiError, ApiSpec, UploadedFile, load_spec

__all__ = [
    "ApiError",
    "ApiFailure",
    "ApiSpec",
    "Call",
    "EntityParseError",
    "ParsedText",
    "TelegramEmulator",
    "UploadedFile",
    "WaitTimeoutError",
    "find_bot_commands",
    "load_spec",
    "parse_html",
    "utf16_len",
]
