"""Sending with retries, and the case event that records how it ended.

Transient failures (a 5xx, a 429, a refused connection) are tried again after an exponential
backoff; a permanent one (an invalid number, a refused recipient, a deleted tweet) stops at
once. Either way the caller gets a :class:`SendOutcome`, never an exception, and turns it
into a ``replied`` or ``reply-failed`` event with :func:`outcome_event`: a reply that could
not be delivered is on the case, for a person to see and act on.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.case import CaseEvent, CaseEventKind
from schemas.ids import case_event_id
from schemas.work import ReplyRequest
from sinks.replies.base import ReplySender, SendError, SendResult

__all__ = ["SendOutcome", "outcome_event", "send_with_retry"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]

_MODES = {
    "free-form": "serbest mesaj",
    "template": "onaylı şablon",
    "email": "e-posta",
    "public-reply": "herkese açık yanıt",
    "callback": "geri arama görevi",
}


@dataclass(frozen=True)
class SendOutcome:
    """How a reply ended: ``result`` when sent, else the last ``error`` (``permanent`` when the
    provider refused it), and the attempts it took either way."""

    result: SendResult | None
    error: SendError | None
    attempts: int

    @property
    def ok(self) -> bool:
        """Whether the reply was sent."""
        return self.result is not None

    @property
    def permanent(self) -> bool:
        """Whether it failed for good (a retry later cannot help either)."""
        return self.error is not None and self.error.permanent


async def send_with_retry(
    sender: ReplySender,
    request: ReplyRequest,
    *,
    attempts: int,
    backoff_initial_s: float,
    backoff_max_s: float,
    sleep: Sleep = asyncio.sleep,
) -> SendOutcome:
    """Send, retrying transient errors up to ``attempts`` tries in all; waits double from
    ``backoff_initial_s`` up to ``backoff_max_s`` (a provider's own wait, such as a 429's
    reset time, is honoured within that bound). Nothing is raised: an unexpected exception
    is a permanent failure, logged with its frames (its text redacted)."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    delay = backoff_initial_s
    error: SendError | None = None
    for attempt in range(1, attempts + 1):
        try:
            result = await sender.send(request)
        except SendError as exc:
            error = exc
        except Exception as exc:
            error = SendError(f"unexpected {type(exc).__name__}: {exc}", permanent=True)
            # The frames, not the message: that may quote the citizen (it is redacted above).
            log.error(
                "reply %s: %s failed unexpectedly: %s\n%s",
                request.reply_id,
                type(sender).__name__,
                error,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
        else:
            if attempt > 1:
                log.info("reply %s sent on attempt %d", request.reply_id, attempt)
            return SendOutcome(result, None, attempt)
        if error.permanent or attempt == attempts:
            break
        wait = min(max(delay, error.retry_after_s or 0.0), backoff_max_s)
        log.warning(
            "reply %s on %s: attempt %d failed (%s); retrying in %.1fs",
            request.reply_id,
            request.channel,
            attempt,
            error,
            wait,
        )
        await sleep(wait)
        delay = min(delay * 2, backoff_max_s)
    log.warning(
        "reply %s on %s failed %s after %d attempt(s): %s",
        request.reply_id,
        request.channel,
        "permanently" if error and error.permanent else "for now",
        attempt,
        error,
    )
    return SendOutcome(None, error, attempt)


def outcome_event(
    request: ReplyRequest,
    outcome: SendOutcome,
    at: datetime,
    tracking_number: str | None = None,
) -> CaseEvent:
    """The case event of a reply: ``replied`` (how, and the provider's id) or ``reply-failed``
    (why, with personal data masked), keyed on the reply so a replay overwrites it."""
    tracking = tracking_number or request.tracking_number
    if not tracking:
        raise ValueError("a case event needs the tracking number")
    channel = request.channel.value
    if outcome.result is not None:
        result = outcome.result
        parts = f", {result.parts} parça" if result.parts > 1 else ""
        kind = CaseEventKind.REPLIED
        note = f"Yanıt {channel} kanalından gönderildi ({_MODES[result.mode]}{parts}): "
        note += result.provider_id
    else:
        kind = CaseEventKind.REPLY_FAILED
        how = "kalıcı hata" if outcome.permanent else "geçici hata, denemeler tükendi"
        note = (
            f"Yanıt {channel} kanalından gönderilemedi ({how}, {outcome.attempts} deneme): "
            f"{outcome.error}"
        )
    return CaseEvent(
        event_id=case_event_id(request.case_id, kind.value, request.reply_id),
        case_id=request.case_id,
        tracking_number=tracking,
        kind=kind,
        at=at,
        note=note[:2000],
    )
