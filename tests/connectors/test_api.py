"""The intake API over ASGI, with the in-memory publisher and a blob store in a temp directory."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from connectors.errors import PublishTimeout
from connectors.publisher import MemoryPublisher
from connectors.web import BodySizeLimit, create_web_app
from infra.settings import BlobSettings, Settings, WebSettings
from schemas.ids import is_tracking_number, message_id, tracking_number
from schemas.raw import ApiSubmission, RawEvent
from sinks.blobstore import BlobStore

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RAW_API = "intake.raw.api"
BODY_LIMIT = 64 * 1024
BLOB_LIMIT = 16 * 1024

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0" + b"\x10" * 300
PDF = b"%PDF-1.7\n" + b"0" * 100

SUBMISSION: dict[str, Any] = {
    "source": "alo153",
    "text": "Reşatbey Mahallesi 62003 Sokak'ta iki gündür su yok, ASKİ'ye ulaşamıyoruz.",
    "citizen": {"name": "Ayşe Örnek", "phone": "+90 555 000 00 12"},
    "location": {"lat": 36.9957, "lon": 35.3241, "address": "Reşatbey Mah. 62003 Sk., Seyhan"},
    "submitted_by": "op-1532",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path,
        web=WebSettings(api_token=SecretStr(TOKEN), max_body_bytes=BODY_LIMIT, max_photos=3),
        blobs=BlobSettings(max_bytes=BLOB_LIMIT),
    )


@pytest.fixture
def blobs(settings: Settings) -> BlobStore:
    return BlobStore(settings.blob_dir, settings.blobs.max_bytes)


@pytest.fixture
async def publisher() -> MemoryPublisher:
    started = MemoryPublisher()
    await started.start()
    return started


@pytest.fixture
def app(settings: Settings, publisher: MemoryPublisher, blobs: BlobStore) -> FastAPI:
    return create_web_app(settings, publisher, blobs)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as http:
        yield http


def published_events(publisher: MemoryPublisher) -> list[RawEvent]:
    return [RawEvent.from_bytes(record.value) for record in publisher.on(RAW_API)]


def stored_blobs(blobs: BlobStore) -> list[Path]:
    return [path for path in blobs.root.rglob("*") if path.is_file()] if blobs.root.exists() else []


async def test_json_submission_is_published_then_accepted(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    response = await client.post("/api/v1/intake", json=SUBMISSION, headers=AUTH)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert is_tracking_number(body["tracking_number"])
    assert body["message"] == f"Başvurunuz alındı. Takip numaranız: {body['tracking_number']}"
    [record] = publisher.records
    assert record.topic == RAW_API
    assert ("content-type", b"application/json") in record.headers
    event = RawEvent.from_bytes(record.value)
    assert event.channel == "api"
    assert event.provider_id == record.key
    assert event.received_at.utcoffset() is not None
    assert event.attachments == ()
    assert ApiSubmission.model_validate(event.payload).text == SUBMISSION["text"]
    assert body["message_id"] == message_id("api", record.key)
    assert body["tracking_number"] == tracking_number(body["message_id"])


async def test_multipart_photos_go_to_the_blob_store_and_the_event_carries_refs(
    client: httpx.AsyncClient, publisher: MemoryPublisher, blobs: BlobStore
) -> None:
    files = [
        ("photos", ("cukur-1.png", PNG, "image/png")),
        ("photos", ("cukur-2.jpg", JPEG, "application/octet-stream")),  # type comes from bytes
    ]
    data = {"submission": json.dumps(SUBMISSION, ensure_ascii=False)}

    response = await client.post("/api/v1/intake", data=data, files=files, headers=AUTH)

    assert response.status_code == 202, response.text
    assert is_tracking_number(response.json()["tracking_number"])
    [event] = published_events(publisher)
    assert [ref.content_type for ref in event.attachments] == ["image/png", "image/jpeg"]
    assert [ref.filename for ref in event.attachments] == ["cukur-1.png", "cukur-2.jpg"]
    assert [blobs.get(ref) for ref in event.attachments] == [PNG, JPEG]
    assert event.payload["citizen"]["name"] == "Ayşe Örnek"


async def test_multipart_without_photos_is_accepted(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    files = {"submission": (None, json.dumps(SUBMISSION), "application/json")}

    response = await client.post("/api/v1/intake", files=files, headers=AUTH)

    assert response.status_code == 202, response.text
    [event] = published_events(publisher)
    assert event.attachments == ()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_without_the_right_token_it_is_401(
    client: httpx.AsyncClient, publisher: MemoryPublisher, headers: dict[str, str]
) -> None:
    response = await client.post("/api/v1/intake", json=SUBMISSION, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"error", "detail"}
    assert publisher.records == []


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"text": None}, ["body", "text"]),
        ({"source": "facebook"}, ["body", "source"]),
        ({"location": {"lat": 123.4, "lon": 35.3}}, ["body", "location", "lat"]),
    ],
    ids=["missing-text", "unknown-source", "bad-lat"],
)
async def test_an_invalid_submission_is_422_with_field_errors(
    client: httpx.AsyncClient,
    publisher: MemoryPublisher,
    change: dict[str, Any],
    location: list[str],
) -> None:
    submission = {k: v for k, v in {**SUBMISSION, **change}.items() if v is not None}

    response = await client.post("/api/v1/intake", json=submission, headers=AUTH)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_submission"
    assert [error["location"] for error in body["errors"]] == [location]
    assert ".".join(location) in body["detail"]
    assert "+90 555" not in response.text  # input values are not echoed back
    assert publisher.records == []


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "urlencoded"])
async def test_an_invalid_submission_in_a_form_names_the_field_inside_it(
    client: httpx.AsyncClient, publisher: MemoryPublisher, multipart: bool
) -> None:
    text = json.dumps({**SUBMISSION, "text": ""})
    form: dict[str, Any] = (
        {"files": {"submission": (None, text)}} if multipart else {"data": {"submission": text}}
    )

    response = await client.post("/api/v1/intake", headers=AUTH, **form)

    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == ["body", "submission", "text"]
    assert publisher.records == []


async def test_a_body_that_is_not_json_is_422(client: httpx.AsyncClient) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}

    response = await client.post("/api/v1/intake", content=b'{"source": ', headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == ["body"]


async def test_another_media_type_is_415(client: httpx.AsyncClient) -> None:
    headers = {**AUTH, "Content-Type": "text/plain"}

    response = await client.post("/api/v1/intake", content=b"su yok", headers=headers)

    assert response.status_code == 415


async def test_a_photo_that_is_not_an_image_is_422_naming_the_file(
    client: httpx.AsyncClient, publisher: MemoryPublisher, blobs: BlobStore
) -> None:
    files = [
        ("photos", ("ok.png", PNG, "image/png")),
        ("photos", ("dilekce.pdf", PDF, "image/jpeg")),  # the declared type is not trusted
    ]
    data = {"submission": json.dumps(SUBMISSION)}

    response = await client.post("/api/v1/intake", data=data, files=files, headers=AUTH)

    assert response.status_code == 422
    assert "dilekce.pdf" in response.json()["detail"]
    assert response.json()["errors"][0]["location"] == ["body", "photos", 1]
    assert publisher.records == []
    assert stored_blobs(blobs) == []  # nothing is stored before every photo passed


async def test_a_photo_over_the_blob_limit_is_413(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    files = {"photos": ("big.png", PNG + b"\x00" * BLOB_LIMIT, "image/png")}
    data = {"submission": json.dumps(SUBMISSION)}

    response = await client.post("/api/v1/intake", data=data, files=files, headers=AUTH)

    assert response.status_code == 413
    assert "big.png" in response.json()["detail"]
    assert publisher.records == []


async def test_more_photos_than_allowed_is_422(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    files = [("photos", (f"{i}.png", PNG, "image/png")) for i in range(4)]
    data = {"submission": json.dumps(SUBMISSION)}

    response = await client.post("/api/v1/intake", data=data, files=files, headers=AUTH)

    assert response.status_code == 422
    assert publisher.records == []


async def test_a_declared_content_length_over_the_limit_is_413(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    big = {**SUBMISSION, "text": "ş" * BODY_LIMIT}

    response = await client.post("/api/v1/intake", json=big, headers=AUTH)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.headers["connection"] == "close"  # the unread rest is not waited for
    assert publisher.records == []


@pytest.mark.parametrize(
    ("content_type", "opening"),
    [
        ("application/json", b'{"source": "alo153", "text": "'),
        (
            "multipart/form-data; boundary=sinir",
            b'--sinir\r\nContent-Disposition: form-data; name="photos"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + PNG,
        ),
    ],
    ids=["json", "multipart"],
)
async def test_a_chunked_body_over_the_limit_is_413_without_reading_the_rest(
    client: httpx.AsyncClient, publisher: MemoryPublisher, content_type: str, opening: bytes
) -> None:
    chunk = b"x" * 1024
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield opening
        for _ in range(100 * BODY_LIMIT // len(chunk)):
            sent += 1
            yield chunk

    headers = {**AUTH, "Content-Type": content_type}
    response = await client.post("/api/v1/intake", content=endless_body(), headers=headers)

    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert sent <= BODY_LIMIT // len(chunk) + 1
    assert publisher.records == []


async def test_a_client_that_lies_about_content_length_still_gets_413() -> None:
    """The middleware alone: a small declared length, then more bytes than the limit."""
    reads = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"y" * 600, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def reads_everything(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"10")]}
    await BodySizeLimit(reads_everything, max_body_bytes=1024)(scope, receive, send)

    assert sent[0]["status"] == 413
    assert reads == 2


async def test_the_same_idempotency_key_gives_the_same_tracking_number_and_kafka_key(
    client: httpx.AsyncClient, publisher: MemoryPublisher
) -> None:
    headers = {**AUTH, "Idempotency-Key": "b3f1c2e4-alo153-retry"}

    first = await client.post("/api/v1/intake", json=SUBMISSION, headers=headers)
    second = await client.post("/api/v1/intake", json=SUBMISSION, headers=headers)
    other = await client.post(
        "/api/v1/intake", json=SUBMISSION, headers={**AUTH, "Idempotency-Key": "another-key"}
    )

    assert first.status_code == second.status_code == 202
    assert first.json()["tracking_number"] == second.json()["tracking_number"]
    assert other.json()["tracking_number"] != first.json()["tracking_number"]
    keys = [record.key for record in publisher.records]
    assert keys[0] == keys[1] != keys[2]


async def test_without_idempotency_key_each_request_is_a_new_message(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/api/v1/intake", json=SUBMISSION, headers=AUTH)
    second = await client.post("/api/v1/intake", json=SUBMISSION, headers=AUTH)

    assert first.json()["tracking_number"] != second.json()["tracking_number"]


async def test_an_overlong_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    headers = {**AUTH, "Idempotency-Key": "k" * 129}

    response = await client.post("/api/v1/intake", json=SUBMISSION, headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == ["header", "Idempotency-Key"]


@pytest.mark.parametrize("failure", [None, PublishTimeout], ids=["failed", "timeout"])
async def test_when_kafka_does_not_acknowledge_it_is_503_and_nothing_is_published(
    client: httpx.AsyncClient, publisher: MemoryPublisher, failure: Any
) -> None:
    publisher.fail_next(1, *([failure] if failure else []))

    response = await client.post("/api/v1/intake", json=SUBMISSION, headers=AUTH)

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"] == "not_recorded"
    assert "tracking_number" not in response.json()
    assert publisher.records == []


async def test_logs_carry_the_tracking_number_but_no_personal_data_or_token(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await client.post("/api/v1/intake", json=SUBMISSION, headers=AUTH)
    await client.post("/api/v1/intake", json=SUBMISSION, headers={"Authorization": "Bearer x"})

    assert response.json()["tracking_number"] in caplog.text
    for secret in (TOKEN, "Ayşe", "555 000", "Reşatbey", "su yok"):
        assert secret not in caplog.text


async def test_probes_follow_the_publisher_lifespan(settings: Settings, blobs: BlobStore) -> None:
    publisher = MemoryPublisher()
    app = create_web_app(settings, publisher, blobs)
    transport = httpx.ASGITransport(app=app)  # runs no lifespan: the test drives it
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 503

        async with app.router.lifespan_context(app):
            assert publisher.started
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/openapi.json")).status_code == 200

        assert not publisher.started
        assert (await http.get("/readyz")).status_code == 503
