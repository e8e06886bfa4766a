"""The wire to SMSC: one POST per request, aiohttp's failures mapped to our family, capped reads.

Nothing here knows about etiquette: the gate (`bot.smsc.gate`) decides whether a request may go
out, the transport sends it and reads the answer.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp

from bot.smsc.config import SmscClientConfig, SmscCredentials
from bot.smsc.errors import (
    SmscBadResponseError,
    SmscConnectionError,
    SmscError,
    SmscHttpError,
    SmscTimeoutError,
    SmscTransportError,
)
from bot.smsc.files import save_stream
from bot.smsc.models import Download
from bot.smsc.parsing import (
    TaskPage,
    classify_file_head,
    decode_text,
    error_from_body,
    parse_error,
    parse_task_page,
)

_SNIFF_BYTES = 512  # enough to tell a CSV from an error; never the whole file
_MAX_ERROR_BYTES = 64 * 1024


class SmscTransport:
    """Sends requests to SMSC's endpoint over the application's session."""

    def __init__(
        self, session: aiohttp.ClientSession, credentials: SmscCredentials, config: SmscClientConfig
    ) -> None:
        self._session = session  # not ours: the application opens and closes it
        self._credentials = credentials
        self._config = config

    async def fetch_page(self, params: dict[str, str]) -> TaskPage:
        """POST a get_list request and parse the page it answers."""
        timeout = aiohttp.ClientTimeout(
            total=self._config.request_timeout, sock_connect=self._config.connect_timeout
        )
        with transport_errors():
            async with self._post(params, timeout) as resp:
                if resp.status != 200:
                    raise await _http_error(resp)
                raw = await _read_capped(resp.content, self._config.max_list_bytes)
        return parse_task_page(decode_text(raw))

    async def fetch_file(
        self,
        params: dict[str, str],
        dest_dir: Path,
        *,
        answered: Callable[[], None],
        name_for: Callable[[str | None], str],
    ) -> Download:
        """POST a get_file request and stream the file into `dest_dir`.

        `answered()` is called once the answer is known to be a file (the login works);
        `name_for(header_name)` picks the name people see from SMSC's Content-Disposition.
        """
        cfg = self._config
        timeout = aiohttp.ClientTimeout(
            total=cfg.download_timeout,
            sock_connect=cfg.connect_timeout,
            sock_read=cfg.download_read_timeout,
        )
        with transport_errors():
            async with self._post(params, timeout) as resp:
                if resp.status != 200:
                    raise await _http_error(resp)
                head, complete = await _read_head(resp.content, _SNIFF_BYTES)
                verdict = classify_file_head(head, complete=complete)
                if verdict == "empty":
                    raise SmscBadResponseError("SMSC sent an empty file")
                if verdict == "binary":
                    raise SmscBadResponseError("SMSC sent a file that is not CSV text")
                if verdict == "error":
                    rest = b"" if complete else await _read_capped(resp.content, _MAX_ERROR_BYTES)
                    raise error_from_body(head + rest)
                answered()  # the file is coming: the login works, release waiting callers
                return await save_stream(
                    _chunks(head, resp.content),
                    dest_dir,
                    name_for(_header_filename(resp)),
                    max_bytes=cfg.max_download_bytes,
                    buffer_bytes=cfg.write_buffer_bytes,
                    batch_bytes=cfg.chunk_size,
                )

    @asynccontextmanager
    async def _post(
        self, params: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        form = {**self._credentials.form(), "fmt": "3", "charset": "utf-8", **params}
        # Credentials travel only in the POST body. Redirects are not followed: a 307 would
        # replay the body, password included, to wherever SMSC's answer points.
        async with self._session.post(
            self._config.url, data=form, timeout=limits, allow_redirects=False
        ) as resp:
            yield resp


def _header_filename(resp: aiohttp.ClientResponse) -> str | None:
    with warnings.catch_warnings():
        # The header is untrusted: a malformed one means "no name", not a warning per file.
        warnings.simplefilter("ignore")
        disposition = resp.content_disposition
    return disposition.filename if disposition else None


@contextmanager
def transport_errors() -> Iterator[None]:
    """Turn aiohttp's and asyncio's failures into our exception family."""
    try:
        yield
    except TimeoutError as err:
        raise SmscTimeoutError() from err
    except aiohttp.ClientResponseError as err:
        # Only if the application's session sets raise_for_status; we check status ourselves.
        raise SmscHttpError(err.status) from err
    except aiohttp.ClientPayloadError as err:
        raise SmscConnectionError("The connection to SMSC broke during the answer") from err
    except aiohttp.ClientConnectionError as err:
        raise SmscConnectionError() from err
    except aiohttp.ClientError as err:
        raise SmscTransportError() from err


async def _http_error(resp: aiohttp.ClientResponse) -> SmscError:
    """The error for a non-200 answer: SMSC's own error if its body carries one."""
    try:
        raw = await resp.content.read(4096)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    return parse_error(decode_text(raw)) or SmscHttpError(resp.status)


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Read a whole answer, refusing one larger than `limit` bytes."""
    buf = bytearray()
    async for chunk in content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise SmscBadResponseError("SMSC's answer is larger than expected")
    return bytes(buf)


async def _read_head(content: aiohttp.StreamReader, size: int) -> tuple[bytes, bool]:
    """Read the first `size` bytes (fewer at the end); also say whether the answer ended."""
    buf = bytearray()
    while len(buf) < size:
        chunk = await content.read(size - len(buf))
        if not chunk:
            return bytes(buf), True
        buf += chunk
    return bytes(buf), content.at_eof()


async def _chunks(head: bytes, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    yield head
    # Whatever has arrived, as aiohttp holds it: no re-chunking copy on the hot path (the
    # writer batches chunks into `chunk_size` hand-offs to its thread instead).
    async for chunk in content.iter_any():
        yield chunk
