"""WhatsApp replies through the real twilio client against a local Messages API that checks
the exact requests: path, Basic auth, form fields; the collage link is fetched from the
real media route, as Twilio would."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from infra.settings import TwilioSettings
from schemas.common import AttachmentRef, Channel, utc_now
from schemas.work import ReplyRequest
from sinks.blobstore import BlobStore
from sinks.replies.base import SendError
from sinks.replies.links import MediaLinks
from sinks.replies.retry import send_with_retry
from sinks.replies.settings import ReplySettings
from sinks.replies.whatsapp import (
    BODY_MAX_CHARS,
    MEDIA_MAX_BYTES,
    WhatsAppSender,
    excerpt,
    inside_window,
    split_body,
    whatsapp_address,
)
from tests.integration.services import free_port
from tests.sinks.replies.conftest import TRACKING, collage_jpeg
from tests.sinks.replies.fakes import Answer, FakeApi, Seen, ServerThread

SID = "AC" + "0f" * 16
TOKEN = "twilio-auth-token-for-tests"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
FROM = "+908502221530"
CITIZEN = "+905321234567"
TEMPLATE = "HX" + "a1" * 16
ANSWER = (
    "Yüreğir Kiremithane Mahallesi'ndeki kırık konteynerler değiştirildi ve çöpler toplandı. "
    "İlginiz için teşekkür ederiz."
)


def twilio_like(seen: Seen) -> Answer:
    """201 with a new SM sid for the right path and credentials; Twilio's errors otherwise."""
    expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    if seen.header("Authorization") != expected:
        return Answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
    if seen.path != PATH:
        return Answer(404, {"code": 20404, "message": "not found", "status": 404})
    sid = "SM" + secrets.token_hex(16)
    return Answer(201, {"sid": sid, "account_sid": SID, "status": "queued", "body": ""})


def form(seen: Seen) -> dict[str, list[str]]:
    return parse_qs(seen.body.decode("utf-8"), keep_blank_values=True)


@pytest.fixture
def twilio() -> Iterator[FakeApi]:
    with FakeApi(twilio_like) as api:
        yield api


def sender_for(
    api_url: str, links: MediaLinks, blobs: BlobStore | None = None, **overrides: object
) -> WhatsAppSender:
    account = TwilioSettings(account_sid=SID, auth_token=SecretStr(TOKEN), api_base_url=api_url)
    options: dict[str, object] = {
        "whatsapp_from": f"whatsapp:{FROM}",
        "whatsapp_template_sid": TEMPLATE,
        "request_timeout_s": 5.0,
    }
    options.update(overrides)
    return WhatsAppSender(account, ReplySettings.model_validate(options), links, blobs)


def request(
    collage: AttachmentRef | None, last_inbound_at: datetime | None, **fields: object
) -> ReplyRequest:
    values: dict[str, object] = {
        "reply_id": "r-0001",
        "case_id": "case-0001",
        "channel": Channel.WHATSAPP,
        "recipient": CITIZEN,
        "text": ANSWER,
        "attachments": (collage,) if collage else (),
        "in_reply_to": "whatsapp:SM0123456789abcdef0123456789abcdef",
        "tracking_number": TRACKING,
        "last_inbound_at": last_inbound_at,
        "kind": "answer",
    }
    values.update(fields)
    return ReplyRequest.model_validate(values)


async def test_inside_the_window_a_free_form_reply_with_a_fetchable_signed_collage(
    twilio: FakeApi, media: tuple[MediaLinks, ServerThread], collage: AttachmentRef
) -> None:
    links, server = media
    sender = sender_for(twilio.url, links)
    result = await sender.send(request(collage, utc_now() - timedelta(hours=23)))
    await sender.close()

    assert result.mode == "free-form"
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    [seen] = twilio.seen
    assert (seen.method, seen.path) == ("POST", PATH)
    fields = form(seen)
    assert fields["To"] == [f"whatsapp:{CITIZEN}"]
    assert fields["From"] == [f"whatsapp:{FROM}"]
    assert fields["Body"] == [f"{ANSWER}\n\nTakip numaranız: {TRACKING}"]
    assert "ContentSid" not in fields and "ContentVariables" not in fields
    [media_url] = fields["MediaUrl"]
    assert media_url.startswith(f"{server.url}/media/{collage.sha256}?exp=")
    fetched = httpx.get(media_url)
    assert fetched.status_code == 200
    assert fetched.content == collage_jpeg()
    assert fetched.headers["content-type"] == "image/jpeg"
    assert httpx.get(media_url.replace("sig=", "sig=0")).status_code == 403


async def test_the_log_of_a_send_names_neither_the_account_nor_the_citizen(
    twilio: FakeApi, links: MediaLinks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the product's level (DEBUG shows urllib3's request lines)
    sender = sender_for(twilio.url, links)
    result = await sender.send(request(None, utc_now() - timedelta(hours=1)))
    await sender.close()
    assert result.provider_id.startswith("SM")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for private in (SID, TOKEN, CITIZEN, CITIZEN[3:]):
        assert private not in logged


@pytest.mark.parametrize("age", [timedelta(hours=25), timedelta(hours=23, minutes=58), None])
async def test_outside_or_at_the_edge_of_the_window_the_approved_template(
    twilio: FakeApi,
    media: tuple[MediaLinks, ServerThread],
    collage: AttachmentRef,
    age: timedelta | None,
) -> None:
    links, _server = media
    sender = sender_for(twilio.url, links)
    last = utc_now() - age if age is not None else None
    result = await sender.send(request(collage, last))

    assert result.mode == "template"
    [seen] = twilio.seen
    fields = form(seen)
    assert fields["ContentSid"] == [TEMPLATE]
    assert fields["To"] == [f"whatsapp:{CITIZEN}"] and fields["From"] == [f"whatsapp:{FROM}"]
    assert "Body" not in fields and "MediaUrl" not in fields
    variables = json.loads(fields["ContentVariables"][0])
    assert variables["1"] == TRACKING
    assert variables["2"] == ANSWER
    assert httpx.get(variables["3"]).content == collage_jpeg()


async def test_the_request_template_wins_and_missing_values_are_dashes(
    twilio: FakeApi, links: MediaLinks
) -> None:
    sender = sender_for(twilio.url, links)
    long_text = "Ekipler bölgede çalışıyor.\n\n" * 40
    await sender.send(
        request(None, None, template_id="HX" + "b2" * 16, tracking_number=None, text=long_text)
    )
    fields = form(twilio.seen[0])
    assert fields["ContentSid"] == ["HX" + "b2" * 16]
    variables = json.loads(fields["ContentVariables"][0])
    assert variables["1"] == "-" and variables["3"] == "-"
    assert "\n" not in variables["2"] and len(variables["2"]) <= 300
    assert variables["2"].endswith("…")


async def test_no_template_outside_the_window_is_a_permanent_failure(
    twilio: FakeApi, links: MediaLinks
) -> None:
    sender = sender_for(twilio.url, links, whatsapp_template_sid=None)
    with pytest.raises(SendError) as caught:
        await sender.send(request(None, utc_now() - timedelta(days=3)))
    assert caught.value.permanent
    assert twilio.seen == []


async def test_a_long_answer_goes_in_parts_with_the_collage_on_the_first(
    twilio: FakeApi, links: MediaLinks, collage: AttachmentRef
) -> None:
    sender = sender_for(twilio.url, links)
    text = " ".join(["Kanalizasyon hattı yenilendi."] * 120)  # ~3600 characters
    result = await sender.send(request(collage, utc_now() - timedelta(hours=1), text=text))
    bodies = [form(seen)["Body"][0] for seen in twilio.seen]
    assert result.parts == len(bodies) == 3
    assert all(len(body) <= BODY_MAX_CHARS for body in bodies)
    assert " ".join(bodies).replace("\n\nTakip numaranız: ", " ") == f"{text} {TRACKING}"
    assert [("MediaUrl" in form(seen)) for seen in twilio.seen] == [True, False, False]


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [(400, 21211, True), (400, 63016, True), (401, 20003, True), (429, 20429, False),
     (500, 20500, False), (503, 20503, False)],
)  # fmt: skip
async def test_twilio_errors_are_sorted_into_permanent_and_transient(
    twilio: FakeApi,
    links: MediaLinks,
    status: int,
    code: int,
    permanent: bool,
) -> None:
    message = f"The 'To' number {CITIZEN} is not a valid phone number."
    twilio.script.append(Answer(status, {"code": code, "message": message, "status": status}))
    sender = sender_for(twilio.url, links)
    with pytest.raises(SendError) as caught:
        await sender.send(request(None, utc_now()))
    assert caught.value.permanent is permanent
    assert str(code) in str(caught.value)
    assert "5321234567" not in str(caught.value)  # the number is personal data


async def test_a_503_then_201_is_retried_and_sent(twilio: FakeApi, links: MediaLinks) -> None:
    twilio.script.append(Answer(503, {"code": 20503, "message": "Unavailable", "status": 503}))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    outcome = await send_with_retry(
        sender_for(twilio.url, links),
        request(None, utc_now()),
        attempts=3,
        backoff_initial_s=0.5,
        backoff_max_s=4.0,
        sleep=sleep,
    )
    assert outcome.ok and outcome.attempts == 2
    assert outcome.result is not None and outcome.result.provider_id.startswith("SM")
    assert sleeps == [0.5]
    assert len(twilio.seen) == 2 and form(twilio.seen[0]) == form(twilio.seen[1])


async def test_a_400_is_not_retried(twilio: FakeApi, links: MediaLinks) -> None:
    twilio.script.append(Answer(400, {"code": 21211, "message": "Invalid 'To'", "status": 400}))
    outcome = await send_with_retry(
        sender_for(twilio.url, links),
        request(None, utc_now()),
        attempts=5,
        backoff_initial_s=0.0,
        backoff_max_s=0.0,
    )
    assert not outcome.ok and outcome.permanent and outcome.attempts == 1
    assert len(twilio.seen) == 1


async def test_twilio_unreachable_is_transient(links: MediaLinks) -> None:
    sender = sender_for(f"http://127.0.0.1:{free_port()}", links)
    with pytest.raises(SendError) as caught:
        await sender.send(request(None, utc_now()))
    assert not caught.value.permanent


async def test_a_collage_missing_or_too_large_is_permanent(
    twilio: FakeApi, links: MediaLinks, blobs: BlobStore
) -> None:
    gone = AttachmentRef(sha256="e" * 64, size=10, content_type="image/jpeg")
    huge = AttachmentRef(sha256="f" * 64, size=MEDIA_MAX_BYTES + 1, content_type="image/jpeg")
    sender = sender_for(twilio.url, links, blobs)
    for ref in (gone, huge):
        with pytest.raises(SendError) as caught:
            await sender.send(request(ref, utc_now()))
        assert caught.value.permanent
    assert twilio.seen == []


def test_whatsapp_address_accepts_prefixed_and_turkish_forms() -> None:
    for value in (CITIZEN, f"whatsapp:{CITIZEN}", "0532 123 45 67", "90 (532) 123-45-67"):
        assert whatsapp_address(value) == f"whatsapp:{CITIZEN}"
    assert whatsapp_address("whatsapp:+4915112345678") == "whatsapp:+4915112345678"
    for bad in ("ayse@example.com", "12345", "+0532", ""):
        with pytest.raises(ValueError):
            whatsapp_address(bad)


def test_window_edges() -> None:
    now = datetime(2025, 5, 12, 12, 0, tzinfo=UTC)
    day = timedelta(hours=24)
    assert inside_window(now - timedelta(hours=23, minutes=54), now, day)
    assert not inside_window(now - timedelta(hours=23, minutes=56), now, day)
    assert not inside_window(now - timedelta(hours=30), now, day)
    assert not inside_window(None, now, day)
    assert not inside_window(now + timedelta(hours=1), now, day)  # a clock from the future
    assert inside_window(now - timedelta(minutes=30), now, timedelta(hours=1))


def test_split_body_and_excerpt() -> None:
    assert split_body("kısa metin") == ["kısa metin"]
    parts = split_body("a" * 50 + "\n\n" + "b" * 50, limit=60)
    assert parts == ["a" * 50, "b" * 50]
    assert split_body("x" * 130, limit=60) == ["x" * 60, "x" * 60, "x" * 10]
    assert excerpt("Su\n\tkesintisi   giderildi.") == "Su kesintisi giderildi."
    cut = excerpt("kelime " * 100, limit=50)
    assert len(cut) <= 50 and cut.endswith("kelime…")
