"""WhatsApp replies through Twilio's Messages API, inside or outside the 24-hour window.

Inside the window (the citizen wrote less than ``whatsapp_window_hours`` ago, minus
:data:`WINDOW_MARGIN` so a message queued at the last second is not refused with 63016) the
reply is free-form: the text, and the collage as a signed link Twilio fetches
(:mod:`sinks.replies.links`). A text over Twilio's 1600 characters goes out in parts, the
collage with the first. Outside the window, or when the last message's time is unknown, only
an approved template may open the conversation. The template this code assumes (Content API,
``twilio/text``, Turkish, category UTILITY) has three variables::

    {{1}} numaralı başvurunuz hakkında: {{2}} Fotoğraf: {{3}}
    Ayrıntılar için bu mesaja yanıt verebilirsiniz. Alo 153

``{{1}}`` the tracking number, ``{{2}}`` the reply shortened to :data:`EXCERPT_CHARS` on one
line, ``{{3}}`` the collage link. A value that is missing is ``-``: WhatsApp refuses empty
parameters. When the citizen answers the template, the window opens and free-form follows.

The twilio client is blocking, so each call runs in a thread; its requests go to
``TwilioSettings.api_base_url`` (a local server in tests) through :class:`_HostHttpClient`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from schemas.common import AttachmentRef, Channel, utc_now
from schemas.work import ReplyRequest
from sinks.blobstore import BlobStore
from sinks.replies.base import SendError, SendResult, collapse, with_tracking
from sinks.replies.links import MediaLinks
from sinks.replies.settings import ReplySettings

if TYPE_CHECKING:
    from infra.settings import TwilioSettings

__all__ = [
    "BODY_MAX_CHARS",
    "EXCERPT_CHARS",
    "MEDIA_MAX_BYTES",
    "TWILIO_HOST",
    "WINDOW_MARGIN",
    "WhatsAppSender",
    "excerpt",
    "inside_window",
    "split_body",
    "whatsapp_address",
]

log = logging.getLogger(__name__)

#: The host twilio-python writes into every Messages API URL.
TWILIO_HOST = "https://api.twilio.com"
_TWILIO_HTTP_LOG = logging.getLogger(__name__ + ".twilio_http")
_TWILIO_HTTP_LOG.setLevel(logging.WARNING)
#: Twilio refuses a message body longer than this (error 21617).
BODY_MAX_CHARS = 1600
#: Length of the reply's excerpt in the template (WhatsApp allows more; a phone shows less).
EXCERPT_CHARS = 300
#: Free-form only while this much of the window is left: the message may wait in a queue.
WINDOW_MARGIN = timedelta(minutes=5)
#: WhatsApp's limit for an image.
MEDIA_MAX_BYTES = 5 * 1024 * 1024
#: Media types WhatsApp shows as a picture (one media item per message, at most 5 MB).
_IMAGE_TYPES = ("image/jpeg", "image/png")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_MISSING = "-"
#: twilio reads edge and region from ``os.environ`` when given an empty mapping; nothing but
#: the settings tree may configure the product.
_NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


def whatsapp_address(number: str) -> str:
    """``whatsapp:+90…`` from an E.164 number with or without that prefix (spaces, dashes and
    parentheses dropped; a Turkish ``0…``/``90…`` number gets its ``+90``). Raises ValueError."""
    raw = number.strip()
    if raw.lower().startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    digits = re.sub(r"[\s().-]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif re.fullmatch(r"0[2-5]\d{9}", digits):
        digits = "+90" + digits[1:]
    elif re.fullmatch(r"90[2-5]\d{9}", digits):
        digits = "+" + digits
    if not _E164.match(digits):
        raise ValueError("not a phone number in E.164 form")
    return f"whatsapp:{digits}"


def inside_window(last_inbound_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether a free-form message may be sent: the citizen's last message is younger than the
    window minus :data:`WINDOW_MARGIN` (unknown: no)."""
    if last_inbound_at is None:
        return False
    age = now - last_inbound_at
    return timedelta(0) <= age < window - WINDOW_MARGIN


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = collapse(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.") + "…"


def split_body(text: str, limit: int = BODY_MAX_CHARS) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut after a paragraph, a line or a
    word where one is close enough."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class _HostHttpClient(TwilioHttpClient):
    """twilio's HTTP client, sending ``api.twilio.com`` URLs to the configured base URL."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        # twilio logs every request and response at INFO (URL with the account SID, headers,
        # the Twilio request id): kept out of the product's log unless it is a warning.
        super().__init__(timeout=timeout_s, logger=_TWILIO_HTTP_LOG)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if url.startswith(TWILIO_HOST + "/"):
            url = self.base_url + url[len(TWILIO_HOST) :]
        return super().request(method, url, *args, **kwargs)


class WhatsAppSender:
    """Sends :class:`ReplyRequest` objects of the ``whatsapp`` channel through Twilio."""

    channel = Channel.WHATSAPP

    def __init__(
        self,
        twilio: TwilioSettings,
        settings: ReplySettings,
        links: MediaLinks,
        blobs: BlobStore | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not (twilio.account_sid and twilio.auth_token and settings.whatsapp_from):
            raise ValueError("WhatsApp replies need the Twilio account SID, auth token and sender")
        self.settings = settings
        self.links = links
        self.blobs = blobs
        self._clock = clock
        self._from = whatsapp_address(settings.whatsapp_from)
        self._http = _HostHttpClient(twilio.api_base_url, settings.request_timeout_s)
        self._client = Client(
            twilio.account_sid,
            twilio.auth_token.get_secret_value(),
            http_client=self._http,
            environment=_NO_ENVIRONMENT,
        )

    async def send(self, request: ReplyRequest) -> SendResult:
        """Free-form inside the window, the approved template outside it."""
        if request.channel is not Channel.WHATSAPP:
            raise SendError(f"not a WhatsApp reply: {request.channel}", permanent=True)
        try:
            to = whatsapp_address(request.recipient)
        except ValueError:
            raise SendError("the recipient is not a WhatsApp number", permanent=True) from None
        now = self._clock()
        media = self._media_url(request, now)
        window = timedelta(hours=self.settings.whatsapp_window_hours)
        if inside_window(request.last_inbound_at, now, window):
            return await self._free_form(request, to, media)
        return await self._template(request, to, media)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http.session is not None:
            self._http.session.close()

    def _media_url(self, request: ReplyRequest, now: datetime) -> str | None:
        ref = _collage(request.attachments)
        if ref is None:
            return None
        if ref.size > MEDIA_MAX_BYTES:
            raise SendError(
                f"the collage is {ref.size} bytes; WhatsApp takes at most {MEDIA_MAX_BYTES}",
                permanent=True,
            )
        if self.blobs is not None and not self.blobs.exists(ref):
            raise SendError(
                f"the collage {ref.sha256[:12]}… is not in the blob store", permanent=True
            )
        return self.links.url_for(ref, now)

    async def _free_form(self, request: ReplyRequest, to: str, media: str | None) -> SendResult:
        parts = split_body(with_tracking(request.text, request.tracking_number))
        sids: list[str] = []
        for index, body in enumerate(parts):
            fields: dict[str, Any] = {"body": body}
            if media and index == 0:
                fields["media_url"] = [media]
            sids.append(await self._create(to, fields))
        return SendResult(sids[0], "free-form", parts=len(sids))

    async def _template(self, request: ReplyRequest, to: str, media: str | None) -> SendResult:
        content_sid = request.template_id or self.settings.whatsapp_template_sid
        if not content_sid:
            raise SendError(
                "outside the 24-hour window and no approved template is configured", permanent=True
            )
        variables = {
            "1": request.tracking_number or _MISSING,
            "2": excerpt(request.text) or _MISSING,
            "3": media or _MISSING,
        }
        fields = {
            "content_sid": content_sid,
            "content_variables": json.dumps(variables, ensure_ascii=False),
        }
        return SendResult(await self._create(to, fields), "template")

    async def _create(self, to: str, fields: dict[str, Any]) -> str:
        return await asyncio.to_thread(self._create_blocking, to, fields)

    def _create_blocking(self, to: str, fields: dict[str, Any]) -> str:
        try:
            message = self._client.messages.create(to=to, from_=self._from, **fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _translate(exc) from None
        except requests.RequestException as exc:
            raise SendError(f"Twilio unreachable: {type(exc).__name__}", permanent=False) from None
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise SendError(f"Twilio answered garbage: {exc}", permanent=False) from None
        if not message.sid:
            raise SendError("Twilio accepted the message without a sid", permanent=False)
        return str(message.sid)


def _collage(attachments: tuple[AttachmentRef, ...]) -> AttachmentRef | None:
    """The first picture WhatsApp can show (one media item per message)."""
    return next((a for a in attachments if a.content_type in _IMAGE_TYPES), None)


def _translate(exc: TwilioRestException | TwilioServiceException) -> SendError:
    """4xx (21211 invalid number, 63016 outside the window, 20003 bad credentials) cannot be
    fixed by trying again; 429 and 5xx can."""
    status = int(exc.status)
    if isinstance(exc, TwilioServiceException):
        text = exc.detail or exc.title
    else:
        text = str(exc.msg).removeprefix("Unable to create record: ")
    permanent = 400 <= status < 500 and status != 429
    return SendError(f"Twilio {status} (code {exc.code}): {text}", permanent=permanent)
