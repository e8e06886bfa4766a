"""Documents: uploads (sendDocument), file ids, getFile and the stored contents."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import Any

from .limits import MAX_DOWNLOAD_BYTES
from .messages import MessagesMixin
from .records import JSONDict, StoredFile
from .spec import ApiError, UploadedFile

__all__ = ["FilesMixin"]


class FilesMixin(MessagesMixin):
    """Files the bot uploaded, by file_id (and file_path, for the download route)."""

    def _new_file(self, upload: UploadedFile) -> StoredFile:
        seq = next(self._file_seq)
        digest = hashlib.sha256(upload.content + seq.to_bytes(8, "big")).hexdigest()
        file_name = Path(upload.filename).name or "document"
        mime = upload.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{seq:05d}{digest[:40]}",
            file_unique_id=f"AgAD{digest[40:52]}",
            file_name=file_name,
            mime_type=mime,
            content=upload.content,
            file_path=f"documents/file_{seq}{Path(file_name).suffix}",
        )
        self._files[stored.file_id] = stored
        self.documents[stored.file_id] = upload.content
        return stored

    async def _send_document(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        chat = self._resolve_chat(params["chat_id"])
        self._check_thread(chat, params)  # before the upload: a refused one keeps no file
        caption = self._caption(params)
        upload = files.get("document")
        if upload is not None:
            if not upload.content:
                raise ApiError(400, "Bad Request: file must be non-empty")
            stored = self._new_file(upload)
        else:
            found = self._files.get(params["document"])
            if found is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            stored = found
        markup = self._check_markup(params.get("reply_markup"))
        message = self._new_message(chat, params)
        message["document"] = _document(stored)
        if caption.text:
            message["caption"] = caption.text
            if caption.entities:
                message["caption_entities"] = caption.entities
        return self._store(chat, message, markup)

    async def _get_file(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        stored = self._files.get(params["file_id"])
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }


def _document(stored: StoredFile) -> JSONDict:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": stored.file_name,
        "mime_type": stored.mime_type,
        "file_size": len(stored.content),
    }
