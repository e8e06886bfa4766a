"""A request's raw parameters: query string plus a JSON, url-encoded or multipart body.

A file part over the upload limit is read to the end (so the client sees the answer), then refused
with 413, as Telegram's server does.
"""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from .records import JSONDict
from .spec import ApiError, UploadedFile

__all__ = ["read_params"]


async def read_params(
    request: web.Request, max_upload_bytes: int
) -> tuple[JSONDict, dict[str, UploadedFile]]:
    """The raw parameters and uploaded files; ApiError for a malformed or too large body."""
    raw: JSONDict = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if not request.body_exists:
        return raw, files
    ctype = request.content_type
    try:
        if ctype == "application/json":
            body = await request.read()
            if body.strip():
                try:
                    data = json.loads(body)
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                raw.update(data)
        elif ctype == "application/x-www-form-urlencoded":
            raw.update((await request.post()).items())
        elif ctype.startswith("multipart/"):
            files = await _read_multipart(request, raw, max_upload_bytes)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    return raw, files


async def _read_multipart(
    request: web.Request, raw: JSONDict, max_upload_bytes: int
) -> dict[str, UploadedFile]:
    """Stream the parts into `raw` and the files; a file over the limit is drained, then 413."""
    files: dict[str, UploadedFile] = {}
    too_large = False
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            raw[part.name] = await part.text()
            continue
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > max_upload_bytes:
                too_large = True
                chunks.clear()
            elif not too_large:
                chunks.append(chunk)
        content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
        files[part.name] = UploadedFile(part.filename, b"".join(chunks), content_type)
    if too_large:
        raise ApiError(413, "Request Entity Too Large")
    return files
