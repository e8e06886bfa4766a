"""Telegram's size limits, as the emulator enforces them."""

__all__ = ["MAX_CAPTION_LENGTH", "MAX_DOWNLOAD_BYTES", "MAX_MESSAGE_LENGTH", "MAX_UPLOAD_BYTES"]

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units, after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
