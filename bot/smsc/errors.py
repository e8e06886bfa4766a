"""One exception family for everything that can go wrong talking to SMSC.

Every message is short, human and free of secrets: handlers show `str(err)` to users as is.
"""

from __future__ import annotations


class SmscError(Exception):
    """Base of every SMSC failure. `retry_after` (seconds) is set when waiting will help.

    `cause` names what happened in a few words without the wait ("SMSC answered HTTP 500",
    "our own limit of ... is used up"), for notes that add their own times.
    """

    code: int | None = None
    default_message = "SMSC request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        cause: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        self.cause = cause or self.message
        self.sent = True  # False: a refusal of our own backoff or budget, nothing was sent
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class SmscApiError(SmscError):
    """SMSC answered with one of its numbered errors."""

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        description: str = "",
        cause: str | None = None,
    ) -> None:
        self.description = description  # SMSC's own text, untrusted: escape before showing
        super().__init__(message, retry_after=retry_after, cause=cause)


class SmscParameterError(SmscApiError):
    code = 1
    default_message = "SMSC rejected the request parameters"


class SmscAuthError(SmscApiError):
    code = 2
    default_message = "SMSC rejected the login or password (or this IP is not allowed)"


class SmscIpBlockedError(SmscApiError):
    code = 4
    default_message = "SMSC has temporarily blocked this server's IP address"


class SmscNotFoundError(SmscApiError):
    code = 5
    default_message = "SMSC has no such task or file"


class SmscRateLimitedError(SmscApiError):
    """SMSC answered error 9, or we are still backing off after it."""

    code = 9
    default_message = "SMSC answered error 9 (too many requests)"


class SmscBudgetError(SmscError):
    """Not sent: our own request budget said wait (SMSC itself refused nothing)."""

    default_message = "Our own SMSC request budget is used up"


class SmscUnknownApiError(SmscApiError):
    """A numbered error the API page does not list."""

    def __init__(self, code: int, description: str = "") -> None:
        self.code = code
        super().__init__(f"SMSC answered with error {code}", description=description)


class SmscTransportError(SmscError):
    """We could not get a usable answer: network, HTTP status, timeout or garbage."""


class SmscTimeoutError(SmscTransportError):
    default_message = "SMSC did not answer in time"


class SmscSlowError(SmscTimeoutError):
    """SMSC has not answered yet; the request goes on in the background."""

    default_message = "SMSC has not answered yet (still waiting in the background)"


class SmscConnectionError(SmscTransportError):
    default_message = "Could not connect to SMSC"


class SmscHttpError(SmscTransportError):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"SMSC answered HTTP {status}")


class SmscBadResponseError(SmscTransportError):
    default_message = "SMSC sent an answer we could not understand"


API_ERRORS: dict[int, type[SmscApiError]] = {
    cls.code: cls
    for cls in (
        SmscParameterError,
        SmscAuthError,
        SmscIpBlockedError,
        SmscNotFoundError,
        SmscRateLimitedError,
    )
}
