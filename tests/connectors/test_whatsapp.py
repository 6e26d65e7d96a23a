"""The Twilio WhatsApp webhook over ASGI, with the in-memory publisher, a blob store in a temp
directory and an in-memory twin of Twilio's media host (``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import base64
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from connectors.publisher import MemoryPublisher
from connectors.runtime import Delivery
from connectors.state import ConnectorState
from connectors.whatsapp import (
    REPLY,
    WEBHOOK_PATH,
    MediaFetcher,
    WhatsAppIntake,
    build_whatsapp_intake,
    build_whatsapp_router,
    signed_url,
    whatsapp_tracking_number,
)
from infra.settings import ConnectorSettings, Settings, TwilioSettings
from schemas.ids import is_tracking_number
from schemas.ops import ChannelAlarm
from schemas.raw import RawEvent
from sinks.blobstore import BlobStore
from streams.normalize import normalize

TOKEN = "twilio-test-auth-token"
ACCOUNT = "AC" + "1" * 32
PUBLIC = "https://intake.example.gov.tr"
PUBLIC_WEBHOOK = PUBLIC + WEBHOOK_PATH
SOCKET = "http://127.0.0.1:8153"
API = "https://api.twilio.com"
RAW = "intake.raw.whatsapp"
MEDIA_LIMIT = 4096

#: A real 2×2 greyscale baseline JPEG (JFIF), 357 bytes.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010200000100010000ffdb004300080606070605080707070909080a0c140d0c0b"
    "0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e3334"
    "32ffc0000b080002000201011100ffc4001f0000010501010101010100000000000000000102030405060708"
    "090a0bffc400b5100002010303020403050504040000017d0102030004110512213141061351610722711432"
    "8191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a43444546474849"
    "4a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3"
    "a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9ea"
    "f1f2f3f4f5f6f7f8f9faffda0008010100003f00f2d8e34bc8d6eae9167b89809259651b9e473c9662792492"
    "4926bfffd9"
)
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def media_url(sid: str, name: str = "ME1") -> str:
    return f"{API}/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media/{name}"


def twilio_form(sid: str, body: str = "Yüreğir'de sokak lambası yanmıyor", **extra: str) -> dict:
    """A WhatsApp webhook form as Twilio sends it."""
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Ayşe Yılmaz",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": "905321112233",
        "SmsStatus": "received",
        "Body": body,
        "To": "whatsapp:+908502221530",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": "whatsapp:+905321112233",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def with_media(form: dict, *items: tuple[str, str]) -> dict:
    """``form`` carrying media items ``(url, declared content type)``."""
    out = {**form, "NumMedia": str(len(items)), "MessageType": "image"}
    for index, (url, kind) in enumerate(items):
        out[f"MediaUrl{index}"] = url
        out[f"MediaContentType{index}"] = kind
    return out


@dataclass
class MediaHost:
    """An in-memory twin of Twilio's media host: Basic auth, per-path answers, a request log."""

    answers: dict[str, list[Callable[[], httpx.Response]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    delay_s: float = 0.0

    def serve(self, url: str, *answers: Callable[[], httpx.Response]) -> str:
        self.answers[url] = list(answers)
        return url

    def hits(self, url: str) -> int:
        return sum(1 for request in self.requests if str(request.url) == url)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        url = str(request.url)
        if url.startswith(API) and request.headers.get("authorization") != BASIC:
            return httpx.Response(401, json={"message": "Authenticate"})
        answers = self.answers.get(url)
        if not answers:
            return httpx.Response(404)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer()


def jpeg() -> httpx.Response:
    return httpx.Response(200, content=JPEG, headers={"content-type": "image/jpeg"})


def status(code: int) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(code)


def refused() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_settings(tmp_path: Path, **twilio: object) -> Settings:
    options: dict[str, object] = {
        "account_sid": ACCOUNT,
        "auth_token": SecretStr(TOKEN),
        "public_url": PUBLIC,
        "media_max_bytes": MEDIA_LIMIT,
        "media_attempts": 3,
        **twilio,
    }
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path,
        connectors=ConnectorSettings(
            relay_interval_s=0.05,
            silence_alarm_after_s=6 * 3600,
            whatsapp=TwilioSettings(**options),  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def publisher() -> MemoryPublisher:
    started = MemoryPublisher()
    await started.start()
    return started


@pytest.fixture
def media() -> MediaHost:
    return MediaHost()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_intake(
    settings: Settings, publisher: MemoryPublisher, media: MediaHost, clock: Clock, sleeps: list
) -> WhatsAppIntake:
    state = ConnectorState(settings.connector_state_dir / "whatsapp.sqlite3")
    blobs = BlobStore(settings.blob_dir, settings.blobs.max_bytes)
    http = httpx.AsyncClient(transport=httpx.MockTransport(media))
    intake = WhatsAppIntake(
        settings, Delivery("whatsapp", publisher, state, clock), blobs, http=http, clock=clock
    )

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    intake.media = MediaFetcher(http, blobs, settings.connectors.whatsapp, sleep=no_sleep)
    return intake


@pytest.fixture
async def intake(
    settings: Settings,
    publisher: MemoryPublisher,
    media: MediaHost,
    clock: Clock,
    sleeps: list[float],
) -> AsyncIterator[WhatsAppIntake]:
    made = make_intake(settings, publisher, media, clock, sleeps)
    yield made
    await made.stop()


def make_app(intake: WhatsAppIntake) -> FastAPI:
    app = FastAPI()
    app.include_router(build_whatsapp_router(intake))
    return app


@pytest.fixture
async def client(intake: WhatsAppIntake) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(intake))
    async with httpx.AsyncClient(transport=transport, base_url=SOCKET) as http:
        yield http


def signature(params: dict, url: str = PUBLIC_WEBHOOK, token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


async def post(
    client: httpx.AsyncClient,
    params: dict,
    *,
    url: str = PUBLIC_WEBHOOK,
    path: str = WEBHOOK_PATH,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    signed = signature(params, url) if headers is None else headers
    return await client.post(path, data=params, headers=signed)


def reply_text(response: httpx.Response) -> str:
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    [message] = list(root)
    assert message.tag == "Message"
    return message.text or ""


def events(publisher: MemoryPublisher) -> list[RawEvent]:
    return [RawEvent.from_bytes(record.value) for record in publisher.on(RAW)]


async def test_a_text_message_is_stored_then_answered_with_the_tracking_number(
    client: httpx.AsyncClient, publisher: MemoryPublisher, intake: WhatsAppIntake, clock: Clock
) -> None:
    sid = new_sid()
    form = twilio_form(sid)

    response = await post(client, form)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    tracking = whatsapp_tracking_number(sid)
    assert is_tracking_number(tracking)
    assert reply_text(response) == REPLY.format(tracking=tracking)
    assert reply_text(response).startswith("Mesajınız alındı. Takip numaranız: 153-")
    [record] = publisher.on(RAW)
    assert record.key == sid
    event = RawEvent.from_bytes(record.value)
    assert event.channel == "whatsapp" and event.provider_id == sid
    assert event.received_at == clock.now
    assert {k: event.payload[k] for k in form} == form  # every parameter, as a string
    assert event.payload["media"] == [] and event.payload["media_failed"] == []
    assert event.attachments == ()
    assert intake.state.already_published([sid]) == {sid}
    assert intake.state.health("whatsapp").last_message_at == clock.now
    assert normalize(event).tracking_number == tracking


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        "other-token",
        "tampered",
    ],
    ids=["missing", "empty", "garbage", "other-token", "tampered-body"],
)
async def test_without_a_valid_signature_it_is_403_and_nothing_is_stored(
    client: httpx.AsyncClient,
    publisher: MemoryPublisher,
    intake: WhatsAppIntake,
    headers: dict[str, str] | str,
) -> None:
    sid = new_sid()
    form = twilio_form(sid)
    if headers == "other-token":
        headers = signature(form, token="not-the-token")
    elif headers == "tampered":
        headers = signature(form)
        form = {**form, "Body": "Başka bir metin"}
    assert isinstance(headers, dict)

    response = await post(client, form, headers=headers)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert publisher.records == []
    assert intake.state.already_published([sid]) == set()
    assert intake.state.pending_count() == 0


async def test_the_signature_is_over_the_public_url_not_the_sockets(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    form = twilio_form(new_sid())

    over_socket = await post(client, form, url=SOCKET + WEBHOOK_PATH)
    over_public = await post(client, form, url=PUBLIC_WEBHOOK)

    assert over_socket.status_code == 403
    assert over_public.status_code == 200
    assert len(publisher.on(RAW)) == 1


@pytest.mark.parametrize(
    ("public_url", "signed"),
    [
        (PUBLIC, PUBLIC_WEBHOOK),
        (PUBLIC + "/", PUBLIC_WEBHOOK),
        (PUBLIC_WEBHOOK, PUBLIC_WEBHOOK),
        ("https://gw.example.gov.tr/alo153", "https://gw.example.gov.tr/alo153" + WEBHOOK_PATH),
        ("https://intake.example.gov.tr:8443", "https://intake.example.gov.tr:8443" + WEBHOOK_PATH),
    ],
    ids=["host", "host-slash", "full-url", "proxy-prefix", "port"],
)
async def test_each_form_of_public_url_gives_the_url_twilio_signed(
    client: httpx.AsyncClient, intake: WhatsAppIntake, public_url: str, signed: str
) -> None:
    intake.twilio = intake.twilio.model_copy(update={"public_url": public_url})
    assert signed_url(public_url, WEBHOOK_PATH, "") == signed

    response = await post(client, twilio_form(new_sid()), url=signed)

    assert response.status_code == 200, response.text


async def test_the_query_string_is_part_of_the_signed_url(client: httpx.AsyncClient) -> None:
    form = twilio_form(new_sid())
    path = WEBHOOK_PATH + "?hat=153&kanal=wa"

    without_query = await post(client, form, path=path, url=PUBLIC_WEBHOOK)
    with_query = await post(client, form, path=path, url=PUBLIC + path)

    assert (without_query.status_code, with_query.status_code) == (403, 200)


async def test_the_web_servers_public_url_is_the_fallback(
    tmp_path: Path, publisher: MemoryPublisher, media: MediaHost, clock: Clock
) -> None:
    settings = make_settings(tmp_path, public_url=None)
    settings.web.public_url = "https://web.example.gov.tr"
    intake = make_intake(settings, publisher, media, clock, [])
    transport = httpx.ASGITransport(app=make_app(intake))
    async with httpx.AsyncClient(transport=transport, base_url=SOCKET) as http:
        response = await post(
            http, twilio_form(new_sid()), url="https://web.example.gov.tr" + WEBHOOK_PATH
        )
    await intake.stop()

    assert response.status_code == 200, response.text


async def test_unknown_parameters_are_signed_checked_and_kept(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    form = twilio_form(new_sid(), ChannelMetadata='{"type":"whatsapp"}', YeniParametre2031="x")

    response = await post(client, form)

    assert response.status_code == 200, response.text
    [event] = events(publisher)
    assert event.payload["ChannelMetadata"] == '{"type":"whatsapp"}'
    assert event.payload["YeniParametre2031"] == "x"


async def test_a_sha256_signature_named_in_the_settings_header_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    form = twilio_form(new_sid())
    digest = RequestValidator(TOKEN).compute_signature(PUBLIC_WEBHOOK, form, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": digest,
        "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA256",
    }

    assert (await post(client, form, headers=headers)).status_code == 200
    headers["X-Twilio-Webhooks-Signature-Settings"] = "algorithm=HMAC_SHA1"
    assert (await post(client, form, headers=headers)).status_code == 403


async def test_a_repeated_message_sid_gets_the_same_answer_and_stores_nothing_new(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    form = twilio_form(new_sid())

    first = await post(client, form)
    second = await post(client, form)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(publisher.on(RAW)) == 1


async def test_a_retry_during_the_first_request_waits_for_it(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost
) -> None:
    sid = new_sid()
    url = media.serve(media_url(sid), jpeg)
    media.delay_s = 0.2  # Twilio retries while the photo is still downloading
    form = with_media(twilio_form(sid), (url, "image/jpeg"))

    first, second = await asyncio.gather(post(client, form), post(client, form))

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(publisher.on(RAW)) == 1
    assert media.hits(url) == 1


async def test_a_location_pin_is_stored_and_becomes_the_messages_location(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    form = twilio_form(
        new_sid(),
        body="",
        MessageType="location",
        Latitude="36.9914",
        Longitude="35.3308",
        Address="Reşatbey Mah., Seyhan/Adana",
        Label="Merkez Park",
    )

    response = await post(client, form)

    assert response.status_code == 200, response.text
    [event] = events(publisher)
    assert event.payload["Latitude"] == "36.9914"
    message = normalize(event)
    assert message.text == "(konum)"
    assert message.location is not None
    assert (message.location.lat, message.location.lon) == (36.9914, 35.3308)
    assert message.location.label == "Merkez Park"


async def test_a_photo_is_downloaded_with_the_account_credentials_into_the_blob_store(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost, intake: WhatsAppIntake
) -> None:
    sid = new_sid()
    cdn = media.serve("https://mms.twiliocdn.com/ACxx/photo", jpeg)
    url = media.serve(media_url(sid), lambda: httpx.Response(307, headers={"location": cdn}))
    form = with_media(twilio_form(sid, body=""), (url, "image/jpeg"))

    response = await post(client, form)

    assert response.status_code == 200, response.text
    [event] = events(publisher)
    [ref] = event.attachments
    assert ref.content_type == "image/jpeg" and ref.size == len(JPEG)
    assert ref.filename == f"{sid}-0.jpg"
    assert intake.blobs.get(ref) == JPEG
    assert event.payload["media"] == [
        {
            "index": 0,
            "content_type": "image/jpeg",
            "status": "stored",
            "attempts": 1,
            "sha256": ref.sha256,
            "size": len(JPEG),
        }
    ]
    assert event.payload["media_failed"] == []
    api_request, cdn_request = media.requests
    assert api_request.headers["authorization"] == BASIC
    assert "authorization" not in cdn_request.headers  # never sent to another host
    assert normalize(event).text == "(fotoğraf)"


async def test_a_download_that_fails_twice_is_retried_with_backoff(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost, sleeps: list[float]
) -> None:
    sid = new_sid()
    url = media.serve(media_url(sid), status(503), refused, jpeg)
    form = with_media(twilio_form(sid), (url, "image/jpeg"))

    response = await post(client, form)

    assert response.status_code == 200, response.text
    [event] = events(publisher)
    assert len(event.attachments) == 1
    assert event.payload["media"][0]["attempts"] == 3
    assert media.hits(url) == 3
    assert sleeps == [0.5, 1.0]


async def test_a_photo_that_never_downloads_keeps_the_text_and_is_listed_as_failed(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost
) -> None:
    sid = new_sid()
    good = media.serve(media_url(sid, "ME1"), jpeg)
    bad = media.serve(media_url(sid, "ME2"), status(500))
    form = with_media(twilio_form(sid), (good, "image/jpeg"), (bad, "image/png"))

    response = await post(client, form)

    assert response.status_code == 200, response.text
    [record] = publisher.on(RAW)
    event = RawEvent.from_bytes(record.value)
    assert event.payload["Body"] == form["Body"]
    assert len(event.attachments) == 1
    assert event.payload["media_failed"] == [
        {"index": 1, "content_type": "image/png", "reason": "download_failed"}
    ]
    assert event.payload["media"][1]["attempts"] == 3 == media.hits(bad)
    assert TOKEN.encode() not in record.value
    assert normalize(event).text == form["Body"]


async def test_a_refused_download_is_not_retried(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost
) -> None:
    sid = new_sid()
    url = media.serve(media_url(sid), status(403))
    response = await post(client, with_media(twilio_form(sid), (url, "image/jpeg")))

    assert response.status_code == 200
    [event] = events(publisher)
    assert event.payload["media_failed"][0]["reason"] == "download_refused"
    assert media.hits(url) == 1


def big(declared_length: bool) -> Callable[[], httpx.Response]:
    data = JPEG + b"\x00" * MEDIA_LIMIT

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1024):
            yield data[start : start + 1024]

    if declared_length:
        return lambda: httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
    return lambda: httpx.Response(200, content=chunks(), headers={"content-type": "image/jpeg"})


@pytest.mark.parametrize("declared_length", [True, False], ids=["content-length", "chunked"])
async def test_media_over_the_size_limit_is_rejected_but_the_message_kept(
    client: httpx.AsyncClient,
    publisher: MemoryPublisher,
    media: MediaHost,
    intake: WhatsAppIntake,
    declared_length: bool,
) -> None:
    sid = new_sid()
    url = media.serve(media_url(sid), big(declared_length))

    response = await post(client, with_media(twilio_form(sid), (url, "image/jpeg")))

    assert response.status_code == 200
    [event] = events(publisher)
    assert event.attachments == ()
    assert event.payload["media_failed"] == [
        {"index": 0, "content_type": "image/jpeg", "reason": "too_large"}
    ]
    assert event.payload["media"][0]["status"] == "rejected"
    assert media.hits(url) == 1
    assert not intake.blobs.root.exists() or not any(intake.blobs.root.rglob("*"))


@pytest.mark.parametrize(
    ("declared", "body", "reason", "requested"),
    [
        ("text/vcard", b"BEGIN:VCARD\r\nEND:VCARD\r\n", "type_not_allowed", 0),
        ("image/jpeg", b"<html>not a photo</html>", "type_mismatch", 1),
        ("video/mp4", b"GIF89a" + b"\x00" * 20, "type_not_allowed", 1),
    ],
    ids=["declared-not-allowed", "bytes-not-declared", "sniffed-not-allowed"],
)
async def test_media_of_a_type_not_allowed_is_rejected(
    client: httpx.AsyncClient,
    publisher: MemoryPublisher,
    media: MediaHost,
    declared: str,
    body: bytes,
    reason: str,
    requested: int,
) -> None:
    sid = new_sid()
    url = media.serve(media_url(sid), lambda: httpx.Response(200, content=body))

    response = await post(client, with_media(twilio_form(sid), (url, declared)))

    assert response.status_code == 200
    [event] = events(publisher)
    assert event.attachments == ()
    assert event.payload["media_failed"] == [
        {"index": 0, "content_type": declared, "reason": reason}
    ]
    assert media.hits(url) == requested


async def test_credentials_are_never_sent_to_a_host_outside_twilio(
    client: httpx.AsyncClient, publisher: MemoryPublisher, media: MediaHost
) -> None:
    url = media.serve("https://media.example.com/photo.jpg", jpeg)
    response = await post(client, with_media(twilio_form(new_sid()), (url, "image/jpeg")))

    assert response.status_code == 200
    [event] = events(publisher)
    assert event.payload["media_failed"][0]["reason"] == "untrusted_url"
    assert media.requests == []


async def test_when_kafka_is_down_the_message_is_kept_in_the_outbox_then_relayed(
    client: httpx.AsyncClient, publisher: MemoryPublisher, intake: WhatsAppIntake
) -> None:
    publisher.fail_next()
    form = twilio_form(new_sid())

    first = await post(client, form)
    again = await post(client, form)

    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert publisher.records == []
    assert intake.state.pending_count() == 1

    await intake.start()  # the relay drains the outbox now that Kafka answers
    for _ in range(100):
        if publisher.records:
            break
        await asyncio.sleep(0.02)
    [event] = events(publisher)
    assert event.provider_id == form["MessageSid"]
    assert intake.state.pending_count() == 0


async def test_when_the_message_cannot_be_stored_it_is_503(
    client: httpx.AsyncClient, publisher: MemoryPublisher, intake: WhatsAppIntake
) -> None:
    form = twilio_form(new_sid())
    publisher.fail_next()
    intake.state.close()  # neither Kafka nor the outbox can take it

    response = await post(client, form)

    assert response.status_code == 503
    assert response.json()["error"] == "not_recorded"
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    ("twilio", "missing"),
    [({"auth_token": None}, "AUTH_TOKEN"), ({"public_url": None}, "PUBLIC_URL")],
    ids=["no-token", "no-public-url"],
)
async def test_an_unconfigured_webhook_is_503(
    tmp_path: Path,
    publisher: MemoryPublisher,
    media: MediaHost,
    clock: Clock,
    twilio: dict[str, object],
    missing: str,
) -> None:
    intake = make_intake(make_settings(tmp_path, **twilio), publisher, media, clock, [])
    transport = httpx.ASGITransport(app=make_app(intake))
    async with httpx.AsyncClient(transport=transport, base_url=SOCKET) as http:
        response = await post(http, twilio_form(new_sid()))
    await intake.stop()

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_configured"
    assert f"INTAKE_CONNECTORS__WHATSAPP__{missing}" in body["detail"]
    assert publisher.records == []


async def test_a_signed_form_without_message_sid_is_400(client: httpx.AsyncClient) -> None:
    form = {k: v for k, v in twilio_form(new_sid()).items() if k != "MessageSid"}

    response = await post(client, form)

    assert response.status_code == 400
    assert "MessageSid" in response.json()["detail"]


async def test_a_body_that_is_not_a_form_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(WEBHOOK_PATH, json={"MessageSid": new_sid()})

    assert response.status_code == 415


async def test_a_silent_channel_raises_one_alarm_per_threshold(
    client: httpx.AsyncClient, publisher: MemoryPublisher, intake: WhatsAppIntake, clock: Clock
) -> None:
    start = clock.now
    intake.started_at = start
    clock.now = start + timedelta(hours=5)
    assert await intake.check_silence() is None

    clock.now = start + timedelta(hours=7)
    alarm = await intake.check_silence()
    assert alarm is not None and alarm.connector == "whatsapp"
    [record] = publisher.on("intake.alarms")
    assert ChannelAlarm.from_bytes(record.value).kind == "silent"

    clock.now = start + timedelta(hours=8)
    assert await intake.check_silence() is None  # at most one per threshold

    assert (await post(client, twilio_form(new_sid()))).status_code == 200
    clock.now = start + timedelta(hours=13)
    assert await intake.check_silence() is None  # the message reset the clock


async def test_the_watch_task_delivers_the_alarm(
    publisher: MemoryPublisher, intake: WhatsAppIntake, clock: Clock
) -> None:
    intake.watch_interval_s = 0.01
    await intake.start()
    clock.now += timedelta(hours=7)
    for _ in range(200):
        if publisher.on("intake.alarms"):
            break
        await asyncio.sleep(0.01)
    await intake.stop()

    assert len(publisher.on("intake.alarms")) == 1


async def test_build_whatsapp_intake_keeps_its_state_under_the_connector_state_dir(
    settings: Settings, publisher: MemoryPublisher
) -> None:
    intake = build_whatsapp_intake(settings, publisher)
    try:
        assert intake.state.path == settings.connector_state_dir / "whatsapp.sqlite3"
        assert intake.blobs.root == settings.blob_dir
        assert intake.kafka == settings.kafka
        assert intake.delivery.publisher is publisher
        assert intake.configured
    finally:
        await intake.stop()
