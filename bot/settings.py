"""Configuration from the environment and `.env`, validated once at start."""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ChatIds = Annotated[tuple[int, ...], NoDecode]


def _parse_chat_ids(value: object) -> object:
    """Accept "1, -100200" (env) as well as a list (code)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",")]
        try:
            return tuple(int(p) for p in parts if p)
        except ValueError:
            raise ValueError(
                "must be comma-separated integer chat ids, e.g. 12345,-1001234"
            ) from None
    return value


class Settings(BaseSettings):
    """Every setting the bot reads. Secrets are `SecretStr`: they never print."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
        # `KEY=` from an --env-file or .env means "not set", not an empty API key that would
        # win over login + password, nor an empty URL that fails to parse.
        env_ignore_empty=True,
    )

    telegram_bot_token: SecretStr
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")

    smsc_api_url: AnyHttpUrl = AnyHttpUrl("https://smscentre.com")
    smsc_login: str | None = None
    smsc_password: SecretStr | None = None
    smsc_apikey: SecretStr | None = None

    allowed_chat_ids: ChatIds = ()
    alert_chat_ids: ChatIds = ()
    notify_canceled: bool = True
    # Groups and alerts speak this unless the chat chose with /language (private chats: the user's).
    bot_language: Literal["en", "ru"] = "en"

    database_url: str = "sqlite:///data/bot.sqlite3"
    poll_interval: float = Field(default=60.0, ge=20.0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    port: int = Field(default=8080, ge=1, le=65535)
    # Seconds from SIGTERM/SIGINT to the exit; work in flight gets all but the last 2.5 s, kept
    # for closing (bot/runtime/lifecycle.py). Match the orchestrator's grace (docker stop: 10).
    stop_timeout: float = Field(default=10.0, ge=3.0, le=600.0)

    # High availability (PostgreSQL only): every replica answers commands; the leader alone
    # polls SMSC, delivers alerts and (in polling mode) calls getUpdates. Standbys try to take
    # over every LEADER_RETRY seconds; the leader checks its lock connection as often.
    replica_id: str | None = Field(default=None, max_length=63)
    leader_retry: float = Field(default=2.0, gt=0.0, le=10.0)

    @field_validator("allowed_chat_ids", "alert_chat_ids", mode="before")
    @classmethod
    def _chat_ids(cls, value: object) -> object:
        return _parse_chat_ids(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", "bot_language", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            parts = urllib.parse.urlsplit(value)
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ValueError("the port of the postgresql:// URL is not a number") from None
            if not parts.hostname or parts.path in ("", "/"):
                raise ValueError("must look like postgresql://user:password@host:5432/database")
            return value
        if not value.startswith("sqlite:///") or len(value) == len("sqlite:///"):
            raise ValueError(
                "must look like sqlite:///path/to/file.sqlite3 or "
                "postgresql://user:password@host:5432/database"
            )
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        bot_id, sep, rest = token.partition(":")
        if not sep or not bot_id.isdigit() or not rest or any(c.isspace() for c in token):
            raise ValueError("does not look like a bot token (expected 123456:ABC-...)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Settings:
        has_pair = bool(self.smsc_login) and self.smsc_password is not None
        if not has_pair and self.smsc_apikey is None:
            if self.smsc_login or self.smsc_password is not None:
                raise ValueError("SMSC_LOGIN and SMSC_PASSWORD must be set together")
            raise ValueError("set SMSC_LOGIN and SMSC_PASSWORD, or SMSC_APIKEY")
        if self.webhook_url is not None:
            loopback = self.webhook_url.host in ("127.0.0.1", "localhost", "::1")
            if self.webhook_url.scheme != "https" and not loopback:
                raise ValueError("WEBHOOK_URL must be an https:// URL")
            if self.webhook_secret is None:
                raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        if self.webhook_secret is not None:
            secret = self.webhook_secret.get_secret_value()
            allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
            if not 1 <= len(secret) <= 256 or not set(secret) <= allowed:
                raise ValueError("WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        return self

    @property
    def is_postgres(self) -> bool:
        """True when DATABASE_URL selects PostgreSQL (several replicas may share it)."""
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def database_path(self) -> Path:
        """The SQLite file named by DATABASE_URL (on PostgreSQL: where local files go)."""
        if self.is_postgres:
            return Path("data/postgresql")
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def files_dir(self) -> Path:
        """Where task files wait between download and upload: a folder only the bot uses.

        Named after the database file so it can never be a folder the operator already had:
        at start the bot deletes everything in it but the CSVs of alerts still to be delivered.
        On PostgreSQL `data/postgresql.downloads`, one per replica (each has its own disk).
        """
        path = self.database_path
        return path.with_name(path.name + ".downloads")

    @property
    def database_password(self) -> str | None:
        """The password inside a postgresql:// DATABASE_URL, if any (a secret like the others)."""
        if not self.is_postgres:
            return None
        password = urllib.parse.urlsplit(self.database_url).password
        return urllib.parse.unquote(password) if password else None

    @property
    def replica(self) -> str:
        """This process's name among replicas: REPLICA_ID, else hostname-pid."""
        return self.replica_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        values = [
            self.telegram_bot_token,
            self.smsc_password,
            self.smsc_apikey,
            self.webhook_secret,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        password = self.database_password
        return [*found, password] if password else found
