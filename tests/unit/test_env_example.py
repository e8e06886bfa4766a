"""`.env.example`: every line, uncommented, is valid for docker/podman, compose and python-dotenv.

`docker run --env-file` (and podman) take a value literally, up to the end of the line; compose's
`env_file` and python-dotenv strip quotes, inline comments and whitespace, and compose
interpolates `$`. Only a plain `KEY=value` means the same to all of them, so that is the one form
the file may use, and every value must then pass our Settings.
"""

from __future__ import annotations

import io
import re
from pathlib import Path, PurePosixPath

import pytest
from dotenv import dotenv_values

from bot.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / ".env.example"
SETTING = re.compile(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def example_lines() -> list[str]:
    return EXAMPLE.read_text(encoding="utf-8").splitlines()


def setting_lines() -> list[tuple[str, str]]:
    """(key, value) of every setting line, commented or not, with docker's literal reading."""
    found = []
    for line in example_lines():
        match = SETTING.match(line)
        if match:
            found.append((match.group(1), docker_value(match.group(0).lstrip("# "))))
    return found


def docker_value(line: str) -> str:
    """The value as `docker run --env-file` reads it: everything after the first '='."""
    return line.lstrip().split("=", 1)[1]


def compose_value(raw: str) -> str:
    """The value as compose's env_file reads it (quotes, inline comments, whitespace)."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].strip()


def variants() -> list[dict[str, str]]:
    """The file with everything uncommented: one environment per alternative of a key."""
    base: dict[str, str] = {}
    alternatives: list[tuple[str, str]] = []
    for key, value in setting_lines():
        if key in base:
            alternatives.append((key, value))
        else:
            base[key] = value
    return [base] + [{**base, key: value} for key, value in alternatives]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_every_line_is_a_setting_a_comment_or_blank() -> None:
    for line in example_lines():
        assert not line or line.startswith("# ") or line == "#" or SETTING.match(line), line
    keys = {key for key, _ in setting_lines()}
    assert keys == {name.upper() for name in Settings.model_fields}  # every setting documented


@pytest.mark.parametrize(("key", "value"), setting_lines())
def test_docker_compose_and_dotenv_read_the_same_value(key: str, value: str) -> None:
    line = f"{key}={value}"
    assert value == value.strip(), f"{line!r}: surrounding whitespace is part of the value"
    assert "#" not in value, f"{line!r}: docker keeps an inline comment as part of the value"
    assert not set(value) & set("'\"`$\\"), f"{line!r}: quotes/$ differ between the readers"
    assert compose_value(value) == value
    assert dotenv_values(stream=io.StringIO(line + "\n")) == {key: value}


@pytest.mark.parametrize("env", variants(), ids=lambda env: str(len(env)))
def test_the_file_uncommented_is_valid_read_literally(
    env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    settings = Settings(_env_file=None)  # pyright: ignore[reportCallIssue]
    assert settings.telegram_bot_token.get_secret_value() == env["TELEGRAM_BOT_TOKEN"]
    assert settings.poll_interval == float(env["POLL_INTERVAL"])


@pytest.mark.parametrize("env", variants(), ids=lambda env: str(len(env)))
def test_the_file_uncommented_is_valid_read_by_dotenv(
    env: dict[str, str], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    settings = Settings(_env_file=path)  # pyright: ignore[reportCallIssue]
    assert settings.port == int(env["PORT"])
    assert str(settings.webhook_url) == env["WEBHOOK_URL"]


def test_the_file_as_shipped_is_valid(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=EXAMPLE)  # pyright: ignore[reportCallIssue]
    assert settings.smsc_apikey is None
    assert settings.webhook_url is None  # polling unless the operator opts in


def test_an_empty_value_means_unset(clean_env: pytest.MonkeyPatch) -> None:
    for key, value in variants()[0].items():
        clean_env.setenv(key, value)
    for key in ("SMSC_APIKEY", "WEBHOOK_URL", "WEBHOOK_SECRET", "ALLOWED_CHAT_IDS"):
        clean_env.setenv(key, "")
    settings = Settings(_env_file=None)  # pyright: ignore[reportCallIssue]
    assert settings.smsc_apikey is None  # not an empty key winning over login + password
    assert settings.webhook_url is None
    assert settings.allowed_chat_ids == ()


def test_the_database_lands_in_the_data_volume_in_the_image(clean_env: pytest.MonkeyPatch) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    workdir = re.findall(r"^WORKDIR (\S+)$", dockerfile, re.M)[-1]
    assert 'VOLUME ["/data"]' in dockerfile
    for key, value in variants()[0].items():
        clean_env.setenv(key, value)
    settings = Settings(_env_file=None)  # pyright: ignore[reportCallIssue]
    resolved = PurePosixPath(workdir) / PurePosixPath(settings.database_path.as_posix())
    assert resolved == PurePosixPath("/data/bot.sqlite3")  # not /app/data: not writable there
