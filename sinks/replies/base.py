"""What every reply sender shares: the result, the one error, the protocol, small text helpers.

A sender turns one :class:`~schemas.work.ReplyRequest` into one provider call (or a few, for
a long WhatsApp answer) and answers with a :class:`SendResult`, or raises :class:`SendError`
whose ``permanent`` flag says whether trying again can help. Retrying is not the sender's
business: :func:`sinks.replies.retry.send_with_retry` owns it.

Provider error texts often quote the recipient ("The 'To' number +90… is not valid"): every
message that reaches a log, a case note or an exception goes through :func:`redact` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from schemas.common import Channel
from schemas.work import ReplyRequest
from sinks.errors import SinkError
from streams.pii import mask_personal_data

__all__ = [
    "ReplySender",
    "SendError",
    "SendMode",
    "SendResult",
    "collapse",
    "provider_reference",
    "redact",
    "with_tracking",
]

#: How a reply went out: a WhatsApp free-form message or approved template, an e-mail,
#: or a public reply on X.
SendMode = Literal["free-form", "template", "email", "public-reply", "callback"]

#: Digit runs long enough to be a phone number of any country (``pii`` knows Turkish ones).
_LONG_DIGITS = re.compile(r"\+?\d(?:[\s().-]?\d){6,}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class SendResult:
    """A reply the provider accepted: its id there (Twilio ``SM…`` sid, e-mail Message-ID,
    tweet id), how it went out, and how many provider messages it took."""

    provider_id: str
    mode: SendMode
    parts: int = 1


class SendError(SinkError):
    """A reply was not sent; ``permanent``: the provider refused it and a retry cannot help."""

    def __init__(
        self, message: str, *, permanent: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(redact(message))
        self.permanent = permanent
        self.retriable = not permanent
        #: What the provider asked us to wait before the next attempt (a 429's reset time).
        self.retry_after_s = retry_after_s


class ReplySender(Protocol):
    """Sends a reply on one channel."""

    channel: Channel

    async def send(self, request: ReplyRequest) -> SendResult:
        """Deliver ``request`` to the provider; raises :class:`SendError`."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def redact(text: str) -> str:
    """``text`` safe for logs and case notes: e-mail, T.C. kimlik no, IBAN and phone numbers
    masked, and any other long digit run (foreign numbers) hidden, on one line."""
    masked = mask_personal_data(" ".join(text.split()))
    return _LONG_DIGITS.sub("***", masked)


def collapse(text: str) -> str:
    """``text`` on one line with single spaces (WhatsApp template variables refuse newlines,
    tabs and runs of spaces)."""
    return _SPACE.sub(" ", text).strip()


def provider_reference(request: ReplyRequest) -> str | None:
    """The provider's id of the citizen's message from ``in_reply_to``
    (``<channel>:<provider id>``), when it belongs to the request's channel."""
    if not request.in_reply_to:
        return None
    channel, sep, provider_id = request.in_reply_to.partition(":")
    if not sep or channel != request.channel.value or not provider_id.strip():
        return None
    return provider_id.strip()


def with_tracking(text: str, tracking_number: str | None, label: str = "Takip numaranız") -> str:
    """``text`` with the tracking number appended, unless it already names it."""
    if not tracking_number or tracking_number in text:
        return text
    return f"{text.rstrip()}\n\n{label}: {tracking_number}"
