"""Words say what happened: each SMSC failure's reply names its real cause, escaped."""

from __future__ import annotations

import pytest

from bot.smsc.errors import SmscError, SmscHttpError, SmscSlowError, SmscTimeoutError
from bot.smsc.etiquette import Throttle
from bot.smsc.gate import _backoff_error, _throttle_error
from handlers.common import smsc_error_text


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (
            _throttle_error(Throttle("window", 41)),
            "⚠️ Our own limit of identical SMSC requests a minute is used up (SMSC refused "
            "nothing); next try in 41 s.",
        ),
        (
            _backoff_error(Throttle("rate_limited", 60), "", answered=True),
            "⚠️ SMSC answered error 9 (too many requests); next try in 60 s.",
        ),
        (
            _throttle_error(Throttle("rate_limited", 30)),
            "⚠️ We are waiting out SMSC's error 9 (too many requests); next try in 30 s.",
        ),
        (
            _throttle_error(Throttle("auth", 540)),
            "⚠️ SMSC rejected the login or password, or this IP (error 2); "
            "next login attempt in 9 min.",
        ),
        (
            _throttle_error(Throttle("ip_blocked", 1800)),
            "⚠️ SMSC has blocked this server's IP address (error 4); next attempt in 30 min.",
        ),
        (
            _throttle_error(Throttle("unconfirmed", 300)),
            "⚠️ An earlier login attempt got no answer before the bot restarted (counted as a "
            "failed login); next try in 5 min.",
        ),
        (SmscHttpError(500), "⚠️ SMSC answered HTTP 500."),
        (SmscTimeoutError(), "⚠️ SMSC did not answer in time."),
        (
            SmscSlowError("SMSC has not answered for 10 s (still waiting in the background)"),
            "⚠️ SMSC has not answered for 10 s (still waiting in the background). "
            "Try again in a moment.",
        ),
        (SmscError("<b>odd</b> & more"), "⚠️ &lt;b&gt;odd&lt;/b&gt; &amp; more."),
    ],
)
def test_replies_name_the_real_cause(err: SmscError, expected: str) -> None:
    assert smsc_error_text(err) == expected


def test_refusals_of_our_own_say_nothing_was_sent() -> None:
    assert _throttle_error(Throttle("window", 5)).sent is False
    assert _backoff_error(Throttle("rate_limited", 60), "", answered=True).sent is True
    assert SmscHttpError(502).sent is True
