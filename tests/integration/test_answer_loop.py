"""The whole loop on real parts: a WhatsApp message with a photo comes in, is routed, the
unit answers with an after-photo, and the citizen's reply reaches the (local) Twilio API
with a link to a before/after collage that our web server serves without EXIF.

Processes: ``intake web`` (webhook, media route), ``intake worker`` (routing, the answer
agent, the collage), ``intake outbound`` (the replier) on the session's real broker; Twilio is
a local HTTP server that checks what it receives and serves the inbound media and the unit's
after-photo.
"""

from __future__ import annotations

import base64
import io
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from twilio.request_validator import RequestValidator

from connectors.whatsapp import WEBHOOK_PATH, whatsapp_tracking_number
from schemas.case import CaseEventKind, UnitResponse
from schemas.work import UnitWorkItem
from sinks.store import CaseStore
from tests.integration.kafka_io import produce, read_until
from tests.integration.services import ProductEnv, free_port, wait_until

pytestmark = pytest.mark.integration

ACCOUNT = "AC" + "7" * 32
TOKEN = "loop-test-auth-token"
PUBLIC = "https://intake.example.gov.tr"
CITIZEN = f"+90532{uuid.uuid4().int % 10_000_000:07d}"  # no other test's citizen
OUR_NUMBER = "+908502221530"


def _photo(colour: tuple[int, int, int], size: tuple[int, int], exif: bool) -> bytes:
    """A JPEG; with ``exif`` it carries an orientation and a GPS position, as phones write."""
    image = Image.new("RGB", size, colour)
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x0112] = 6  # rotate 90° clockwise when shown
        tags[0x8825] = {1: "N", 2: (36.0, 59.0, 29.0), 3: "E", 4: (35.0, 19.0, 50.0)}
        image.save(out, "JPEG", quality=90, exif=tags)
    else:
        image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class FakeTwilio:
    """Twilio's REST API and media host on loopback; records every message create."""

    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    created: list[dict[str, list[str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        basic = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/2010-04-01/") and self.headers["Authorization"] != basic:
                    return self._send(401, b'{"message": "Authenticate"}', "application/json")
                body, kind = api.media.get(self.path, (b"", "text/plain"))
                self._send(200 if body else 404, body, kind)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                expected = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
                if self.path != expected or self.headers["Authorization"] != basic:
                    api.errors.append(f"unexpected {self.path}")
                    return self._send(404, b'{"code": 20404}', "application/json")
                api.created.append(form)
                sid = "SM" + uuid.uuid4().hex
                body = f'{{"sid": "{sid}", "status": "queued", "account_sid": "{ACCOUNT}"}}'
                self._send(201, body.encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio() -> Any:
    fake = FakeTwilio()
    yield fake
    fake.close()


async def test_whatsapp_photo_to_answer_with_collage_on_the_citizens_channel(
    product: tuple[ProductEnv, Path], twilio: FakeTwilio
) -> None:
    env, data_dir = product
    sid = "SM" + uuid.uuid4().hex
    street = 50000 + uuid.uuid4().int % 9999  # a problem of its own in the session's window
    case_id = whatsapp_tracking_number(sid)
    before_path = f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media/ME{uuid.uuid4().hex}"
    twilio.media[before_path] = (_photo((200, 30, 30), (640, 480), exif=True), "image/jpeg")
    twilio.media["/unit/after.jpg"] = (_photo((30, 160, 40), (640, 480), exif=True), "image/jpeg")

    web_port = free_port()
    settings = {
        "INTAKE_CONNECTORS__WHATSAPP__ACCOUNT_SID": ACCOUNT,
        "INTAKE_CONNECTORS__WHATSAPP__AUTH_TOKEN": TOKEN,
        "INTAKE_CONNECTORS__WHATSAPP__PUBLIC_URL": PUBLIC,
        "INTAKE_CONNECTORS__WHATSAPP__API_BASE_URL": twilio.url,
        "INTAKE_WEB__PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "INTAKE_REPLIES__WHATSAPP_FROM": OUR_NUMBER,
        "INTAKE_REPLIES__MEDIA_LINK_SECRET": "loop-" + uuid.uuid4().hex,
        "INTAKE_REPLIES__BACKOFF_INITIAL_S": "0.2",
    }
    env.start_web(data_dir, web_port, "api-" + uuid.uuid4().hex, **settings)
    env.start_worker(data_dir, **settings)
    env.start("outbound", ["outbound"], INTAKE_DATA_DIR=str(data_dir), **settings)

    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": f"whatsapp:{CITIZEN}",
        "To": f"whatsapp:{OUR_NUMBER}",
        "WaId": CITIZEN.lstrip("+"),
        "ProfileName": "Ayşe Yılmaz",
        "Body": f"Reşatbey Mahallesi {street} Sokakta su borusu patladı, sular sokağa akıyor",
        "NumMedia": "1",
        "MediaUrl0": twilio.url + before_path,
        "MediaContentType0": "image/jpeg",
    }
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + WEBHOOK_PATH, form)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}") as client:
        answer = await client.post(
            WEBHOOK_PATH, data=form, headers={"X-Twilio-Signature": signature}
        )
    assert answer.status_code == 200, answer.text

    units = await read_until(
        env.bootstrap,
        ["units.su-kanalizasyon"],
        lambda s: any(r.key == case_id.encode() for r in s),
        90,
    )
    item = UnitWorkItem.from_bytes(next(r for r in units if r.key == case_id.encode()).value)
    assert len(item.photos) == 1 and item.due is not None
    assert CITIZEN not in item.model_dump_json()  # the unit gets the problem, not the citizen

    response = UnitResponse(
        case_id=case_id,
        unit="su-kanalizasyon",
        status="resolved",
        answer="Arızalı boru değiştirildi, su verildi.",
        after_photos=(f"{twilio.url}/unit/after.jpg",),
        responded_at=datetime.now(UTC),
        responder="ASKİ Seyhan ekibi",
    )
    await produce(env.bootstrap, "units.responses", [(case_id.encode(), response.to_bytes())])

    wait_until(lambda: bool(twilio.created), 120, "the reply at the Twilio API")
    assert not twilio.errors
    sent = twilio.created[0]
    assert sent["To"] == [f"whatsapp:{CITIZEN}"] and sent["From"] == [f"whatsapp:{OUR_NUMBER}"]
    assert case_id in sent["Body"][0] and "boru değiştirildi" in sent["Body"][0]
    (media_url,) = sent["MediaUrl"]
    assert media_url.startswith(f"http://127.0.0.1:{web_port}/media/")

    async with httpx.AsyncClient() as client:
        collage = await client.get(media_url)
        tampered = await client.get(media_url.replace("sig=", "sig=0"))
    assert collage.status_code == 200 and collage.headers["content-type"] == "image/jpeg"
    assert tampered.status_code == 403
    assert len(collage.content) <= 5 * 1024 * 1024 and b"Exif" not in collage.content
    image = Image.open(io.BytesIO(collage.content))
    image.verify()
    image = Image.open(io.BytesIO(collage.content))
    assert image.format == "JPEG" and not image.getexif()
    # Both photos are in it: the citizen's red one and the unit's green one.
    colours = {px for _, px in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert any(r > 150 and g < 80 and b < 80 for r, g, b in colours)
    assert any(g > 120 and r < 80 and b < 80 for r, g, b in colours)

    store = CaseStore(f"sqlite:///{data_dir / 'cases.sqlite3'}")

    def closed() -> bool:
        return CaseEventKind.CLOSED in {e.kind for e in store.history(case_id)}

    wait_until(closed, 60, "the case closed in the case store")
    kinds = [e.kind for e in store.history(case_id)]
    assert kinds == [
        CaseEventKind.CREATED,
        CaseEventKind.ROUTED,
        CaseEventKind.ANSWERED,
        CaseEventKind.REPLIED,
        CaseEventKind.CLOSED,
    ], kinds
    record = store.get_case(case_id)
    assert record is not None and record.status.value == "closed"
    (reply,) = store.replies_for(case_id)
    assert reply.status.value == "sent" and CITIZEN not in reply.recipient_masked
    answered = store.get_answer(case_id)
    assert answered is not None and answered.on_time is True

    # A bad payload and an answer to a case nobody opened go to the dead-letter topic with
    # the reason; the answer agent goes on.
    unknown = UnitResponse(
        case_id="153-ZZZZZ-ZZZZZZ",
        unit="su-kanalizasyon",
        status="resolved",
        answer="Yapıldı.",
        responded_at=datetime.now(UTC),
    )
    bad_key, unknown_key = f"bad-{uuid.uuid4().hex}".encode(), b"153-ZZZZZ-ZZZZZZ"
    await produce(
        env.bootstrap,
        "units.responses",
        [(bad_key, b'{"case_id": "153-'), (unknown_key, unknown.to_bytes())],
    )
    dead = await read_until(
        env.bootstrap,
        ["intake.deadletter"],
        lambda s: {bad_key, unknown_key} <= {r.key for r in s},
        60,
    )
    reasons = {
        r.key: {k: v.decode() for k, v in r.headers}
        for r in dead
        if r.key in (bad_key, unknown_key)
    }
    assert reasons[bad_key]["__intake.errors.stage"] == "answer"
    assert "Invalid JSON" in reasons[bad_key]["__intake.errors.exception.message"]
    assert reasons[unknown_key]["__intake.errors.exception.class"].endswith("UnknownCase")
