"""What the SMSC client is told: credentials, and the endpoint, timeouts and etiquette numbers."""

from __future__ import annotations

from dataclasses import dataclass

from bot.smsc.budget import BudgetRules

_ENDPOINT = "/sys/downloads.php"


@dataclass(frozen=True, repr=False)
class SmscCredentials:
    """SMSC login and password, or an API key. Never printed: repr hides the secrets."""

    login: str | None = None
    password: str | None = None
    apikey: str | None = None

    def __post_init__(self) -> None:
        if not self.apikey and not (self.login and self.password):
            raise ValueError("SMSC needs an API key, or a login and a password")

    def __repr__(self) -> str:
        password = "'***'" if self.password else "None"
        apikey = "'***'" if self.apikey else "None"
        return f"SmscCredentials(login={self.login!r}, password={password}, apikey={apikey})"

    def form(self) -> dict[str, str]:
        """Return the authentication fields of a request body (the API key wins if set)."""
        if self.apikey:
            return {"apikey": self.apikey}
        # __post_init__ guarantees both are set when there is no API key.
        return {"login": self.login or "", "psw": self.password or ""}


@dataclass(frozen=True)
class SmscClientConfig:
    """Endpoint, timeouts and etiquette numbers; the defaults suit production."""

    base_url: str = "https://smscentre.com"
    request_timeout: float = 30.0  # whole list request
    connect_timeout: float = 15.0
    download_timeout: float | None = None  # whole download; None: only the per-read timeout
    download_read_timeout: float = 60.0  # longest silence while a file streams
    list_cache_ttl: float = 15.0
    identical_limit: int = 2  # SMSC refuses the 4th identical request in 60 s; we stop at 2
    window_seconds: float = 60.0
    window_margin: float = 1.0  # extra seconds so clock and network jitter cannot bite
    max_concurrency: int = 4  # SMSC refuses 15 concurrent requests
    max_concurrent_downloads: int = 2  # leaves slots for list calls during long downloads
    page_size: int = 200
    max_pages: int = 50
    max_wait: float = 10.0  # longest a call waits on the clock for a slot before raising
    reply_patience: float = 10.0  # real seconds a person waits before the cached list answers
    rate_limit_backoff: float = 60.0  # error 9: this request's key waits this long
    rate_limit_pause: float = 5.0  # error 9: every request pauses this long
    ip_block_backoff: float = 1800.0  # error 4
    auth_retry_interval: float = 600.0  # error 2: one new attempt per this many seconds
    auth_max_failures: int = 3  # failed logins allowed in auth_failure_window (SMSC blocks at 5)
    auth_failure_window: float = 1800.0
    max_list_bytes: int = 16 * 1024 * 1024
    max_download_bytes: int | None = None
    # Bytes of a download handed to its writer thread at once: one hand-off per megabyte,
    # not per network read, is what keeps the download close to a bare copy (bench_download).
    chunk_size: int = 1024 * 1024
    write_buffer_bytes: int = 4 * 1024 * 1024  # most bytes waiting for the disk per download

    def __post_init__(self) -> None:
        if not 1 <= self.identical_limit <= 3:
            raise ValueError("identical_limit must be 1..3: SMSC refuses a 4th identical request")
        if not 1 <= self.max_concurrency < 15:
            raise ValueError("max_concurrency must be 1..14: SMSC refuses 15 concurrent requests")
        if self.page_size < 1 or self.max_pages < 1 or self.max_concurrent_downloads < 1:
            raise ValueError("page_size, max_pages and max_concurrent_downloads must be positive")

    @property
    def url(self) -> str:
        """The endpoint's full address."""
        return self.base_url.rstrip("/") + _ENDPOINT

    def budget_rules(self) -> BudgetRules:
        """The durable budget's numbers, the same as the in-process etiquette's."""
        return BudgetRules(
            identical_limit=self.identical_limit,
            window=self.window_seconds + self.window_margin,
            arrival_bound=self.request_timeout,
            rate_limit_backoff=self.rate_limit_backoff,
            rate_limit_pause=self.rate_limit_pause,
            ip_block_backoff=self.ip_block_backoff,
            auth_retry_interval=self.auth_retry_interval,
            auth_max_failures=self.auth_max_failures,
            auth_failure_span=self.auth_failure_window + self.window_margin,
        )
