"""Retry policy and the case event of an outcome, with a scripted in-memory sender."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from schemas.case import CaseEvent, CaseEventKind
from schemas.common import Channel
from schemas.ids import case_event_id
from schemas.work import ReplyRequest
from sinks.replies.base import SendError, SendResult, provider_reference, redact, with_tracking
from sinks.replies.retry import SendOutcome, outcome_event, send_with_retry
from tests.sinks.replies.conftest import TRACKING

AT = datetime(2025, 5, 12, 14, 0, tzinfo=UTC)


class ScriptedSender:
    """Answers each send with the next scripted error, or a result when the script is done."""

    channel = Channel.WHATSAPP

    def __init__(self, *script: BaseException) -> None:
        self.script = list(script)
        self.calls = 0

    async def send(self, request: ReplyRequest) -> SendResult:
        self.calls += 1
        if self.script:
            raise self.script.pop(0)
        return SendResult("SM" + "1" * 32, "free-form")

    async def close(self) -> None:
        pass


def request(**fields: object) -> ReplyRequest:
    values: dict[str, object] = {
        "reply_id": "reply-7",
        "case_id": "case-7",
        "channel": Channel.WHATSAPP,
        "recipient": "+905321234567",
        "text": "Sokak lambaları onarıldı.",
        "tracking_number": TRACKING,
    }
    values.update(fields)
    return ReplyRequest.model_validate(values)


async def run(
    sender: ScriptedSender, attempts: int = 4, initial: float = 1.0, maximum: float = 3.0
) -> tuple[SendOutcome, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    outcome = await send_with_retry(
        sender,
        request(),
        attempts=attempts,
        backoff_initial_s=initial,
        backoff_max_s=maximum,
        sleep=sleep,
    )
    return outcome, sleeps


def transient(wait: float | None = None) -> SendError:
    return SendError("Twilio 503", permanent=False, retry_after_s=wait)


async def test_transient_errors_back_off_exponentially_then_succeed() -> None:
    sender = ScriptedSender(transient(), transient())
    outcome, sleeps = await run(sender)
    assert outcome.ok and outcome.attempts == 3 == sender.calls
    assert sleeps == [1.0, 2.0]


async def test_backoff_is_capped_and_attempts_run_out() -> None:
    sender = ScriptedSender(*(transient() for _ in range(10)))
    outcome, sleeps = await run(sender, attempts=5)
    assert not outcome.ok and not outcome.permanent
    assert outcome.attempts == 5 == sender.calls
    assert sleeps == [1.0, 2.0, 3.0, 3.0]  # no sleep after the last attempt


async def test_a_permanent_error_stops_at_once() -> None:
    sender = ScriptedSender(transient(), SendError("21211 invalid", permanent=True))
    outcome, sleeps = await run(sender)
    assert not outcome.ok and outcome.permanent and outcome.attempts == 2 == sender.calls
    assert sleeps == [1.0]


async def test_a_providers_wait_is_honoured_within_the_bound() -> None:
    _, sleeps = await run(ScriptedSender(transient(wait=2.5)), maximum=10.0)
    assert sleeps == [2.5]
    _, sleeps = await run(ScriptedSender(transient(wait=900.0)), maximum=10.0)
    assert sleeps == [10.0]


async def test_an_unexpected_exception_is_a_permanent_failure_without_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = ScriptedSender(RuntimeError("cannot reach 0532 123 45 67 / ayse@example.com"))
    with caplog.at_level(logging.WARNING):
        outcome, sleeps = await run(sender)
    assert not outcome.ok and outcome.permanent and sleeps == []
    assert "RuntimeError" in str(outcome.error)
    for leak in ("123 45", "ayse@"):
        assert leak not in str(outcome.error)
        assert leak not in caplog.text


def test_outcome_event_replied_and_failed() -> None:
    sent = SendOutcome(SendResult("SMabc", "template"), None, 2)
    event = outcome_event(request(), sent, AT)
    assert isinstance(event, CaseEvent)
    assert event.kind is CaseEventKind.REPLIED
    assert event.event_id == case_event_id("case-7", "replied", "reply-7")
    assert (event.case_id, event.tracking_number, event.at) == ("case-7", TRACKING, AT)
    assert event.note is not None and "onaylı şablon" in event.note and "SMabc" in event.note

    error = SendError(
        "Twilio 400 (code 21211): The 'To' number +905321234567 is invalid", permanent=True
    )
    failed = outcome_event(request(), SendOutcome(None, error, 1), AT)
    assert failed.kind is CaseEventKind.REPLY_FAILED
    assert failed.event_id != event.event_id
    assert failed.note is not None
    assert "kalıcı hata" in failed.note and "21211" in failed.note
    assert "5321234567" not in failed.note
    retried = outcome_event(request(), SendOutcome(None, transient(), 4), AT)
    assert retried.note is not None and "geçici hata" in retried.note and "4 deneme" in retried.note


def test_outcome_event_needs_a_tracking_number() -> None:
    sent = SendOutcome(SendResult("x", "email"), None, 1)
    with pytest.raises(ValueError):
        outcome_event(request(tracking_number=None), sent, AT)
    assert outcome_event(request(tracking_number=None), sent, AT, TRACKING).tracking_number


def test_redact_hides_foreign_numbers_too() -> None:
    assert redact("to +49 151 12345678 failed") == "to *** failed"
    assert "10000000146" not in redact("T.C. 10000000146")
    assert redact("tweet 42 not found") == "tweet 42 not found"


def test_provider_reference_belongs_to_the_channel() -> None:
    assert provider_reference(request(in_reply_to="whatsapp:SM1")) == "SM1"
    assert provider_reference(request(in_reply_to="email:a@b")) is None
    assert provider_reference(request(in_reply_to=None)) is None


def test_with_tracking_appends_once() -> None:
    assert with_tracking("Tamam.", TRACKING) == f"Tamam.\n\nTakip numaranız: {TRACKING}"
    assert with_tracking(f"{TRACKING} tamam.", TRACKING) == f"{TRACKING} tamam."
    assert with_tracking("Tamam.", None) == "Tamam."
