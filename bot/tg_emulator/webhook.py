"""Webhook mode: setWebhook's checks, getWebhookInfo, and the worker that POSTs updates."""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .records import JSONDict, Webhook
from .spec import ApiError, UploadedFile
from .updates import UpdatesMixin

__all__ = ["WebhookMixin"]

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})


class WebhookMixin(UpdatesMixin):
    """One webhook at a time; an update is retried `webhook_max_attempts` times, then dropped."""

    async def _webhook_worker(self) -> None:
        attempts = 0
        while True:
            changed = self._changed
            hook = self._webhook
            self._updates = [u for u in self._updates if self._allowed(u)]
            if hook is None or not self._updates or self._session is None:
                await changed.wait()
                continue
            update = self._updates[0]
            headers = {}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            error: str | None = None
            try:
                async with self._session.post(hook.url, json=update, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = 0
                error = f"Connection error: {exc.__class__.__name__}"
            self.webhook_deliveries.append((copy.deepcopy(update), status))
            delivered = 200 <= status < 300
            if not delivered:
                hook.last_error_date = self._now()
                hook.last_error_message = error or f"Wrong response from the webhook: {status}"
                attempts += 1
            if delivered or attempts >= self.webhook_max_attempts:
                attempts = 0
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                self._notify()
            else:
                self._notify()
                await asyncio.sleep(self.webhook_retry_delay)

    async def _set_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        url = params.get("url", "")
        if not url:
            self._webhook = None
            self._notify()
            return True
        parts = urlsplit(url)
        loopback = parts.hostname in _LOOPBACK_HOSTS
        # Real Telegram demands https on ports 80/88/443/8443; tests serve http on loopback.
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if not loopback and (parts.port or 443) not in _WEBHOOK_PORTS:
            raise ApiError(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = params.get("max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise ApiError(
                400, "Bad Request: bad webhook: max_connections must be between 1 and 100"
            )
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"]) or None
        self._webhook = Webhook(url, secret, max_connections)
        self._notify()
        return True

    async def _delete_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = None
        self._notify()
        return True

    async def _get_webhook_info(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        hook = self._webhook
        info: JSONDict = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        return info
