"""Configuration: every bad setting is refused with one clear line, and secrets stay secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.__main__ import config_errors
from bot.settings import Settings

REPO = Path(__file__).resolve().parents[2]
GOOD = {
    "TELEGRAM_BOT_TOKEN": "123456:AAAA-secret-token",
    "SMSC_LOGIN": "team",
    "SMSC_PASSWORD": "pa55-word-secret",
}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in list(os.environ):
        if key.startswith(
            (
                "TELEGRAM_",
                "SMSC_",
                "ALLOWED_",
                "ALERT_",
                "DATABASE_",
                "POLL_",
                "LOG_",
                "WEBHOOK_",
                "PORT",
            )
        ):
            monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(GOOD, monkeypatch)
    assert str(s.telegram_api_url) == "https://api.telegram.org/"
    assert str(s.smsc_api_url) == "https://smscentre.com/"
    assert s.allowed_chat_ids == ()
    assert s.poll_interval == 60
    assert s.database_path == Path("data/bot.sqlite3")
    assert s.files_dir == Path("data/bot.sqlite3.downloads")
    assert "secret-token" not in repr(s)
    assert "pa55-word" not in repr(s)


def test_chat_id_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(
        {**GOOD, "ALLOWED_CHAT_IDS": " 1, -1002003004005 ,", "ALERT_CHAT_IDS": "7"}, monkeypatch
    )
    assert s.allowed_chat_ids == (1, -1002003004005)
    assert s.alert_chat_ids == (7,)


def test_apikey_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TELEGRAM_BOT_TOKEN": GOOD["TELEGRAM_BOT_TOKEN"], "SMSC_APIKEY": "key-123"}
    assert settings_from(env, monkeypatch).smsc_apikey is not None


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"TELEGRAM_BOT_TOKEN": None}, "TELEGRAM_BOT_TOKEN", "required"),
        ({"TELEGRAM_BOT_TOKEN": "not a token"}, "TELEGRAM_BOT_TOKEN", "bot token"),
        (
            {"SMSC_LOGIN": None, "SMSC_PASSWORD": None},
            None,
            "SMSC_LOGIN and SMSC_PASSWORD, or SMSC_APIKEY",
        ),
        ({"SMSC_PASSWORD": None}, None, "set together"),
        ({"ALLOWED_CHAT_IDS": "12,abc"}, "ALLOWED_CHAT_IDS", "integer chat ids"),
        ({"POLL_INTERVAL": "5"}, "POLL_INTERVAL", "greater than or equal to 20"),
        ({"POLL_INTERVAL": "soon"}, "POLL_INTERVAL", "number"),
        ({"DATABASE_URL": "postgres://x"}, "DATABASE_URL", "postgresql://user:password@host"),
        ({"DATABASE_URL": "mysql://u:pa55-word@h/db"}, "DATABASE_URL", "sqlite:///"),
        ({"DATABASE_URL": "postgresql://u:pa55-word@h:port/db"}, "DATABASE_URL", "not a number"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "DEBUG"),
        ({"SMSC_API_URL": "not a url"}, "SMSC_API_URL", "URL"),
        ({"WEBHOOK_URL": "http://example.com/hook", "WEBHOOK_SECRET": "abc"}, None, "https"),
        ({"WEBHOOK_URL": "https://example.com/hook"}, None, "WEBHOOK_SECRET"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None], variable: str | None, words: str
) -> None:
    merged = {**GOOD, **env}
    with pytest.raises(ValidationError) as info:
        settings_from({k: v for k, v in merged.items() if v is not None}, monkeypatch)
    lines = config_errors(info.value)
    assert len(lines) == 1
    if variable:
        assert variable in lines[0]
    assert words in lines[0]
    for secret in ("secret-token", "pa55-word"):
        assert secret not in lines[0]


def run_bot(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SMSC_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**clean, **env},
        cwd=tmp_path,  # no .env there
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_entry_point_refuses_bad_config_with_exit_2(tmp_path: Path) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "123456:AAAA-secret-token", "PYTHONPATH": str(REPO)}
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["config error: set SMSC_LOGIN and SMSC_PASSWORD, or SMSC_APIKEY"]
    assert "Traceback" not in result.stderr
    assert "secret-token" not in result.stderr + result.stdout


def test_entry_point_reads_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TELEGRAM_BOT_TOKEN=123456:AAAA\nSMSC_LOGIN=x\nSMSC_PASSWORD=y\nPOLL_INTERVAL=1\n"
    )
    result = run_bot({"PYTHONPATH": str(REPO)}, tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "config error: POLL_INTERVAL: Input should be greater than or equal to 20"
    )


def test_simulate_smsc_subcommand_serves_and_stops(tmp_path: Path) -> None:
    import signal

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "simulate-smsc",
            "--port",
            "0",
            "--login",
            "x",
            "--password",
            "y",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line
        assert "login=x" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["bogus"], 2)])
def test_entry_point_usage(argv: list[str], code: int, tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - our own entry point, fixed arguments
        [sys.executable, "-m", "bot", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == code
    assert "simulate-smsc" in result.stdout + result.stderr


def test_entry_point_reports_an_unusable_database_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {**GOOD, "DATABASE_URL": f"sqlite:///{blocker}/bot.sqlite3", "PYTHONPATH": str(REPO)}
    env["TELEGRAM_API_URL"] = "http://127.0.0.1:9"  # never reached: the database fails first
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("config error: DATABASE_URL: ")
    assert "Traceback" not in result.stderr


def test_entry_point_says_plainly_when_telegram_is_unreachable(tmp_path: Path) -> None:
    env = {**GOOD, "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3", "PYTHONPATH": str(REPO)}
    env["TELEGRAM_API_URL"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    result = run_bot(env, tmp_path)
    assert result.returncode == 1
    # PTB logs its own traceback of the failed request above; the last line says what is wrong.
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the Telegram Bot API")


def test_a_postgresql_url_is_accepted_and_its_password_is_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://bot:p%40ss-W0rd-77@db.internal:5432/bot"
    s = settings_from({**GOOD, "DATABASE_URL": url, "REPLICA_ID": "node-a"}, monkeypatch)
    assert s.is_postgres
    assert s.database_password == "p@ss-W0rd-77"
    assert "p@ss-W0rd-77" in s.secrets
    assert s.replica == "node-a"
    assert s.files_dir == Path("data/postgresql.downloads")


def test_sqlite_has_no_database_password_and_a_default_replica_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings_from(GOOD, monkeypatch)
    assert not s.is_postgres
    assert s.database_password is None
    assert s.replica.endswith(f"-{os.getpid()}")
