"""Media of a WhatsApp message: downloaded from Twilio into the blob store, within limits.

Twilio sends ``NumMedia`` and, per item, ``MediaUrlN`` and ``MediaContentTypeN``. The URL
needs the account's credentials (HTTP Basic ``AccountSid:AuthToken``) and redirects to a
CDN; httpx drops the credentials when a redirect leaves the origin. Credentials are only
ever sent to the configured Twilio API host (or another ``*.twilio.com`` host over HTTPS).

A failed download never costs the message its text: every item ends as a ``MediaResult``,
stored or not, and the caller publishes the message either way.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from infra.settings import TwilioSettings
from schemas.common import AttachmentRef
from sinks.blobstore import BlobStore, sniff_content_type
from sinks.errors import BlobTooLarge

__all__ = [
    "MAX_MEDIA",
    "MEDIA_BACKOFF_S",
    "MEDIA_DEADLINE_S",
    "MediaFetcher",
    "MediaItem",
    "MediaResult",
    "media_items",
]

log = logging.getLogger(__name__)

#: Twilio sends at most 10 media items with one message.
MAX_MEDIA = 10
#: First wait between download attempts; it doubles after each failed attempt.
MEDIA_BACKOFF_S = 0.5
#: All downloads of one message end within this time, so Twilio (15 s) gets its answer.
MEDIA_DEADLINE_S = 10.0
#: Hosts other than the configured API host that may receive the account's credentials.
TRUSTED_HOST_SUFFIX = ".twilio.com"
#: Answers after which another attempt can help (the media may not be ready yet: 404).
_RETRY_STATUSES = frozenset({404, 408, 425, 429, 500, 502, 503, 504})
#: Declared types whose bytes the sniffer recognises: such a declaration must match the bytes.
_SNIFFED_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"}
)
_OCTET_STREAM = "application/octet-stream"
#: Where the system's MIME table may answer otherwise (``.jpe``, ``.oga``).
_EXTENSIONS = {"image/jpeg": ".jpg", "audio/ogg": ".ogg"}

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class MediaItem:
    """One media item named by the webhook form."""

    index: int
    url: str
    declared_type: str | None


@dataclass(frozen=True)
class MediaResult:
    """What became of one media item: ``stored`` (with its blob ref), ``failed`` (the download
    did not succeed; asking again may help) or ``rejected`` (over a limit)."""

    index: int
    content_type: str | None
    status: str
    attempts: int = 0
    reason: str | None = None
    ref: AttachmentRef | None = None

    def as_payload(self) -> dict[str, Any]:
        """The result as it goes into the raw event's ``media`` list (no URL, no credentials)."""
        out: dict[str, Any] = {
            "index": self.index,
            "content_type": self.content_type,
            "status": self.status,
            "attempts": self.attempts,
        }
        if self.ref is not None:
            out.update(sha256=self.ref.sha256, size=self.ref.size)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _bare_type(value: str | None) -> str | None:
    kind = (value or "").split(";")[0].strip().lower()
    return kind or None


def media_items(form: Mapping[str, Any]) -> list[MediaItem]:
    """The media items of a webhook form (``NumMedia`` / ``MediaUrlN`` / ``MediaContentTypeN``)."""
    try:
        count = int(str(form.get("NumMedia") or "0").strip())
    except ValueError:
        count = 0
    items = []
    for index in range(max(0, min(count, MAX_MEDIA))):
        url = str(form.get(f"MediaUrl{index}") or "").strip()
        declared = _bare_type(str(form.get(f"MediaContentType{index}") or ""))
        items.append(MediaItem(index, url, declared))
    return items


class _Retry(Exception):
    """This attempt failed in a way another attempt may fix."""


class _GiveUp(Exception):
    """No attempt can fix this; ``status`` is ``failed`` or ``rejected``."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MediaFetcher:
    """Downloads media items with retries, checks their size and type, stores them as blobs."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        blobs: BlobStore,
        settings: TwilioSettings,
        *,
        backoff_s: float = MEDIA_BACKOFF_S,
        deadline_s: float = MEDIA_DEADLINE_S,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.blobs = blobs
        self.settings = settings
        self.backoff_s = backoff_s
        self.deadline_s = deadline_s
        self._sleep = sleep
        self.max_bytes = min(settings.media_max_bytes, blobs.max_bytes)
        self.allowed = frozenset(t.lower() for t in settings.media_types)
        api = urlsplit(settings.api_base_url)
        self._api_origin = (api.scheme.lower(), (api.hostname or "").lower(), api.port)

    def trusted(self, url: str) -> bool:
        """Whether the account's credentials may be sent to ``url``."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if (parts.scheme.lower(), host, parts.port) == self._api_origin:
            return True
        return parts.scheme.lower() == "https" and host.endswith(TRUSTED_HOST_SUFFIX)

    async def fetch_all(
        self, items: Sequence[MediaItem], auth: tuple[str, str] | None, name: str
    ) -> list[MediaResult]:
        """Every item's result, in order; ``name`` prefixes the stored files' names."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        return list(
            await asyncio.gather(*(self.fetch(item, auth, name, deadline) for item in items))
        )

    async def fetch(
        self, item: MediaItem, auth: tuple[str, str] | None, name: str, deadline: float
    ) -> MediaResult:
        """One item's result: up to ``media_attempts`` downloads before ``deadline``."""
        declared = item.declared_type
        if declared is not None and declared not in self.allowed:
            return MediaResult(item.index, declared, "rejected", 0, "type_not_allowed")
        if not item.url:
            return MediaResult(item.index, declared, "failed", 0, "missing_url")
        if not self.trusted(item.url):
            return MediaResult(item.index, declared, "failed", 0, "untrusted_url")
        if auth is None:
            return MediaResult(item.index, declared, "failed", 0, "no_account_sid")
        loop = asyncio.get_running_loop()
        attempts = 0
        reason = "download_failed"
        while attempts < self.settings.media_attempts:
            remaining = deadline - loop.time()
            if remaining <= 0:
                reason = "deadline"
                break
            attempts += 1
            try:
                data, served = await self._download(
                    item.url, auth, min(self.settings.media_timeout_s, remaining)
                )
                kind = self._content_type(data, declared or served)
                ref = await asyncio.to_thread(
                    self.blobs.put,
                    data,
                    filename=_filename(name, item.index, kind),
                    declared_type=kind,
                )
                return MediaResult(item.index, kind, "stored", attempts, ref=ref)
            except _GiveUp as exc:
                return MediaResult(item.index, declared, exc.status, attempts, exc.reason)
            except BlobTooLarge:
                return MediaResult(item.index, declared, "rejected", attempts, "too_large")
            except _Retry as exc:
                reason = "download_failed"
                log.info("whatsapp media %d: attempt %d failed: %s", item.index, attempts, exc)
            if attempts < self.settings.media_attempts:
                pause = min(self.backoff_s * 2 ** (attempts - 1), deadline - loop.time())
                if pause > 0:
                    await self._sleep(pause)
        log.warning("whatsapp media %d not downloaded after %d attempts", item.index, attempts)
        return MediaResult(item.index, declared, "failed", attempts, reason)

    async def _download(
        self, url: str, auth: tuple[str, str], timeout_s: float
    ) -> tuple[bytes, str | None]:
        try:
            async with self.client.stream(
                "GET", url, auth=auth, timeout=timeout_s, follow_redirects=True
            ) as response:
                status = response.status_code
                if status in _RETRY_STATUSES:
                    raise _Retry(f"HTTP {status}")
                if status in (401, 403):
                    raise _GiveUp("failed", "download_refused")
                if status != 200:
                    raise _GiveUp("failed", f"http_{status}")
                declared_length = response.headers.get("content-length", "")
                if declared_length.isdigit() and int(declared_length) > self.max_bytes:
                    raise _GiveUp("rejected", "too_large")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _GiveUp("rejected", "too_large")
                    chunks.append(chunk)
                return b"".join(chunks), _bare_type(response.headers.get("content-type"))
        except httpx.TransportError as exc:
            raise _Retry(type(exc).__name__) from exc
        except httpx.TooManyRedirects as exc:
            raise _GiveUp("failed", "too_many_redirects") from exc

    def _content_type(self, data: bytes, declared: str | None) -> str:
        """The type of the bytes; a declared type the sniffer knows must match them."""
        sniffed = sniff_content_type(data)
        if sniffed != _OCTET_STREAM:
            kind = sniffed
        elif declared in _SNIFFED_TYPES:
            raise _GiveUp("rejected", "type_mismatch")
        else:
            kind = declared or _OCTET_STREAM
        if kind not in self.allowed:
            raise _GiveUp("rejected", "type_not_allowed")
        return kind


def _filename(name: str, index: int, kind: str) -> str:
    extension = _EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ""
    return f"{name}-{index}{extension}"
