"""E-mail replies: a threaded answer to the citizen's mail, the collage attached.

The reply carries ``In-Reply-To`` and ``References`` with the citizen's Message-ID, so mail
clients show it in the citizen's thread, and a Message-ID of its own made from the reply id's
digest and the tracking number (``<…case-153-…@domain>``): stable, so a replayed reply is the same
mail, and recognised by :func:`connectors.mail.headers.find_case_reference` when the citizen
answers it. ``Auto-Submitted: auto-generated`` (RFC 3834) keeps vacation responders quiet.
Sending goes through the product's one :class:`~sinks.mail.SmtpMailer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import re
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from schemas.common import AttachmentRef, Channel, utc_now
from schemas.work import ReplyRequest
from sinks.blobstore import BlobStore
from sinks.mail import MailError, SmtpMailer
from sinks.replies.base import SendError, SendResult, collapse, provider_reference, with_tracking

__all__ = ["DEFAULT_SUBJECT", "EmailSender", "attachment_name", "reply_subject"]

#: The subject when the citizen's mail had none (``{tracking}`` is the tracking number).
DEFAULT_SUBJECT = "Başvurunuz hakkında ({tracking})"
_DEFAULT_SUBJECT_NO_TRACKING = "Alo 153 başvurunuz hakkında"
#: Reply prefixes citizens' mail clients use (English, Turkish Outlook, German …).
_REPLY_PREFIX = re.compile(r"^\s*(re|ynt|yan[ıi]t|aw|sv)\s*:", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^[^<>\s\x00-\x1f\x7f]{1,500}$")


def reply_subject(subject: str | None, tracking_number: str | None) -> str:
    """``Re: <subject>`` (once), or the Turkish default naming the tracking number."""
    text = collapse(subject or "")
    if not text:
        if tracking_number:
            return DEFAULT_SUBJECT.format(tracking=tracking_number)
        return _DEFAULT_SUBJECT_NO_TRACKING
    return text if _REPLY_PREFIX.match(text) else f"Re: {text}"


def attachment_name(ref: AttachmentRef, tracking_number: str | None, index: int) -> str:
    """``once-sonra-<tracking>.jpg`` (``-2``, ``-3`` … for further files)."""
    stem = f"once-sonra-{tracking_number}" if tracking_number else "once-sonra"
    if index > 0:
        stem += f"-{index + 1}"
    extension = ".jpg" if ref.content_type == "image/jpeg" else None
    extension = extension or mimetypes.guess_extension(ref.content_type) or ".bin"
    return stem + extension


class EmailSender:
    """Sends :class:`ReplyRequest` objects of the ``email`` channel through SMTP."""

    channel = Channel.EMAIL

    def __init__(
        self, mailer: SmtpMailer, blobs: BlobStore, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.mailer = mailer
        self.blobs = blobs
        self._clock = clock

    async def send(self, request: ReplyRequest) -> SendResult:
        """Build the mail (blobs read in a thread) and send it; the Message-ID is the id."""
        message = await asyncio.to_thread(self.build, request)
        try:
            message_id = await self.mailer.send_async(message)
        except MailError as exc:
            raise SendError(str(exc), permanent=exc.permanent) from None
        return SendResult(message_id, "email")

    async def close(self) -> None:
        """Nothing to close: every send opens its own SMTP connection."""

    def build(self, request: ReplyRequest) -> EmailMessage:
        """The reply as a MIME message (no From: the mailer adds it); raises SendError."""
        if request.channel is not Channel.EMAIL:
            raise SendError(f"not an e-mail reply: {request.channel}", permanent=True)
        recipient = _recipient(request.recipient)
        message = EmailMessage()
        message["To"] = recipient
        message["Subject"] = reply_subject(request.subject, request.tracking_number)
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = self._message_id(request)
        citizen_id = provider_reference(request)
        if citizen_id and not citizen_id.startswith("sha256:") and _MESSAGE_ID.match(citizen_id):
            message["In-Reply-To"] = f"<{citizen_id}>"
            message["References"] = f"<{citizen_id}>"
        message["Auto-Submitted"] = "auto-generated"
        message["Content-Language"] = "tr"
        body = with_tracking(request.text, request.tracking_number)
        message.set_content(body + "\n", subtype="plain", charset="utf-8", cte="quoted-printable")
        for index, ref in enumerate(request.attachments):
            try:
                data = self.blobs.get(ref)
            except FileNotFoundError:
                raise SendError(
                    f"attachment {ref.sha256[:12]}… is not in the blob store", permanent=True
                ) from None
            maintype, _, subtype = ref.content_type.partition("/")
            message.add_attachment(
                data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment_name(ref, request.tracking_number, index),
            )
        return message

    def _message_id(self, request: ReplyRequest) -> str:
        domain = self.mailer.settings.from_address.rpartition("@")[2] or "alo153.invalid"
        # 80 bits of the reply id's digest: unique, and the header fits one line (78).
        local = hashlib.sha256(request.reply_id.encode("utf-8")).hexdigest()[:20]
        if request.tracking_number:
            local += f".case-{request.tracking_number}"
        return f"<{local}@{domain}>"


def _recipient(value: str) -> str:
    """The address alone (a display name dropped); SendError when it is not one."""
    if "\r" in value or "\n" in value:
        raise SendError("the recipient is not an e-mail address", permanent=True)
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (at and local and "." in domain) or re.search(r"\s", address):
        raise SendError("the recipient is not an e-mail address", permanent=True)
    return address
