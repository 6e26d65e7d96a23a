"""E-mail replies through the product's SMTP mailer to a real SMTP server (aiosmtpd) on
loopback: threading headers, Turkish text, the collage's bytes, refusals and outages."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.mail.headers import find_case_reference, message_ids
from schemas.common import AttachmentRef, Channel
from schemas.work import ReplyRequest
from sinks.blobstore import BlobStore
from sinks.mail import SmtpMailer, SmtpSettings
from sinks.replies.base import SendError
from sinks.replies.email import EmailSender, reply_subject
from sinks.replies.retry import send_with_retry
from tests.integration.services import free_port
from tests.sinks.replies.conftest import TRACKING, collage_jpeg

CITIZEN = "ayse.yilmaz@example.com.tr"
CITIZEN_MESSAGE_ID = "CAFx9k2=Yq1@mail.example.com.tr"
TURKISH = "Çöp konteynerleri değiştirildi; ığdır İzmir öğün şüphe Ğ Ş Ü Ö Ç I ı."


class Inbox:
    """aiosmtpd handler: keeps every accepted message, refuses ``yok@`` recipients with 550."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("yok@"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        found = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)  # decode_data is off: raw bytes
            found.append(message_from_bytes(envelope.content, policy=policy.default))
        return found


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def sender(port: int, blobs: BlobStore, tmp_path: Path) -> EmailSender:
    settings = SmtpSettings(
        host="127.0.0.1", port=port, timeout_s=5, from_address="alo153@adana.test"
    )
    return EmailSender(SmtpMailer(settings, tmp_path / "outbox"), blobs)


def request(collage: AttachmentRef | None, **fields: object) -> ReplyRequest:
    values: dict[str, object] = {
        "reply_id": "4be1c0a29f5d4e6f8a7b6c5d4e3f2a1b",
        "case_id": "case-0002",
        "channel": Channel.EMAIL,
        "recipient": CITIZEN,
        "text": f"Sayın başvuru sahibi,\n\n{TURKISH}\n\nAlo 153",
        "attachments": (collage,) if collage else (),
        "in_reply_to": f"email:{CITIZEN_MESSAGE_ID}",
        "tracking_number": TRACKING,
        "subject": "Kiremithane'de çöpler alınmıyor",
        "kind": "answer",
    }
    values.update(fields)
    return ReplyRequest.model_validate(values)


async def test_threaded_reply_with_turkish_text_and_the_collage(
    smtp: tuple[Inbox, int], blobs: BlobStore, collage: AttachmentRef, tmp_path: Path
) -> None:
    inbox, port = smtp
    result = await sender(port, blobs, tmp_path).send(request(collage))

    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == [CITIZEN]
    assert envelope.mail_from == "alo153@adana.test"
    [mail] = inbox.messages()
    assert mail["To"] == CITIZEN
    assert mail["Subject"] == "Re: Kiremithane'de çöpler alınmıyor"
    assert mail["In-Reply-To"] == f"<{CITIZEN_MESSAGE_ID}>"
    assert mail["References"] == f"<{CITIZEN_MESSAGE_ID}>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] == result.provider_id and result.mode == "email"
    # The citizen's answer to this mail is recognised as a follow-up of the case.
    assert find_case_reference(message_ids(result.provider_id), [], None, "") == TRACKING
    body = mail.get_body(("plain",))
    assert body is not None and body.get_content_charset() == "utf-8"
    text = body.get_content()
    assert TURKISH in text
    assert text.rstrip().endswith(f"Takip numaranız: {TRACKING}")
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_filename() == f"once-sonra-{TRACKING}.jpg"
    assert attachment.get_content() == collage_jpeg() == blobs.get(collage)


async def test_a_replay_is_the_same_mail(
    smtp: tuple[Inbox, int], blobs: BlobStore, tmp_path: Path
) -> None:
    inbox, port = smtp
    mails = sender(port, blobs, tmp_path)
    first = await mails.send(request(None))
    second = await mails.send(request(None))
    assert first.provider_id == second.provider_id
    ids = [m["Message-ID"] for m in inbox.messages()]
    assert ids == [first.provider_id] * 2


async def test_without_subject_or_thread_a_turkish_default_and_no_threading_headers(
    smtp: tuple[Inbox, int], blobs: BlobStore, tmp_path: Path
) -> None:
    inbox, port = smtp
    await sender(port, blobs, tmp_path).send(
        request(None, subject=None, in_reply_to="email:sha256:" + "a" * 64)
    )
    [mail] = inbox.messages()
    assert mail["Subject"] == f"Başvurunuz hakkında ({TRACKING})"
    assert mail["In-Reply-To"] is None and mail["References"] is None
    assert list(mail.iter_attachments()) == []


async def test_a_refused_recipient_is_permanent_and_not_retried(
    smtp: tuple[Inbox, int], blobs: BlobStore, tmp_path: Path
) -> None:
    inbox, port = smtp
    outcome = await send_with_retry(
        sender(port, blobs, tmp_path),
        request(None, recipient="yok@example.com.tr"),
        attempts=3,
        backoff_initial_s=0.0,
        backoff_max_s=0.0,
    )
    assert not outcome.ok and outcome.permanent and outcome.attempts == 1
    assert outcome.error is not None and "550" in str(outcome.error)
    assert "yok@" not in str(outcome.error)
    assert inbox.envelopes == []


async def test_server_down_is_transient(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(SendError) as caught:
        await sender(free_port(), blobs, tmp_path).send(request(None))
    assert not caught.value.permanent


async def test_bad_recipient_or_missing_collage_is_permanent(
    smtp: tuple[Inbox, int], blobs: BlobStore, tmp_path: Path
) -> None:
    inbox, port = smtp
    mails = sender(port, blobs, tmp_path)
    gone = AttachmentRef(sha256="d" * 64, size=1, content_type="image/jpeg")
    for bad in (request(None, recipient="ayse yilmaz"), request(gone)):
        with pytest.raises(SendError) as caught:
            await mails.send(bad)
        assert caught.value.permanent
    assert inbox.envelopes == []


def test_reply_subject() -> None:
    assert reply_subject("Su kesintisi", None) == "Re: Su kesintisi"
    assert reply_subject("RE: Su kesintisi", None) == "RE: Su kesintisi"
    assert reply_subject("Ynt: Su kesintisi", None) == "Ynt: Su kesintisi"
    assert reply_subject("Su\r\n kesintisi", None) == "Re: Su kesintisi"
    assert reply_subject("  ", TRACKING) == f"Başvurunuz hakkında ({TRACKING})"
    assert reply_subject(None, None) == "Alo 153 başvurunuz hakkında"
