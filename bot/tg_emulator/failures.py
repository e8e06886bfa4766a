"""The error answers a test can inject (`TelegramEmulator.fail`), and the rules that hold them."""

from __future__ import annotations

import http
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spec import ApiError

__all__ = ["ApiFailure", "FailureRule"]


@dataclass(frozen=True)
class ApiFailure:
    """An error answer to inject with `TelegramEmulator.fail`; `hang` never answers."""

    status: int
    description: str
    parameters: Mapping[str, Any] | None = None
    hang: bool = False

    @classmethod
    def server_error(cls, status: int = 502) -> ApiFailure:
        """A 5xx: {"ok": false, "error_code": 502, "description": "Bad Gateway"}."""
        return cls(status, http.HTTPStatus(status).phrase)

    @classmethod
    def retry_after(cls, seconds: int) -> ApiFailure:
        """429 Too Many Requests with parameters.retry_after."""
        return cls(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    @classmethod
    def blocked(cls) -> ApiFailure:
        """403: the user blocked the bot."""
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def chat_not_found(cls) -> ApiFailure:
        """400: chat not found."""
        return cls(400, "Bad Request: chat not found")

    @classmethod
    def bad_request(cls, description: str) -> ApiFailure:
        """Any other 400 ("Bad Request: " is prefixed unless present)."""
        if not description.startswith("Bad Request:"):
            description = f"Bad Request: {description}"
        return cls(400, description)

    @classmethod
    def timeout(cls) -> ApiFailure:
        """No answer until the client gives up (disconnects) or the emulator stops."""
        return cls(0, "no answer", hang=True)

    def error(self) -> ApiError:
        """As an ApiError."""
        return ApiError(self.status, self.description, self.parameters)


@dataclass
class FailureRule:
    """`failure` for the next `remaining` calls of `method` [to `chat_id`]."""

    method: str  # lower case, or "*"
    failure: ApiFailure
    remaining: int
    chat_id: int | str | None
