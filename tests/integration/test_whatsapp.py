"""The WhatsApp webhook over real sockets: uvicorn, a local media host with Basic auth, and the
session's real Kafka. Requests are signed with the twilio package, over the public URL.

Run as a program (``python -m tests.integration.test_whatsapp PORT``) this module serves the
webhook app from the environment's settings: the restart test starts it as a process and
kills it.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from connectors.publisher import KafkaPublisher
from connectors.web import BodySizeLimit
from connectors.whatsapp import (
    REPLY,
    WEBHOOK_PATH,
    build_whatsapp_intake,
    build_whatsapp_router,
    whatsapp_tracking_number,
)
from infra.settings import Settings, load_settings
from schemas.raw import RawEvent
from sinks.blobstore import BlobStore
from streams.normalize import normalize
from tests.connectors.test_whatsapp import ACCOUNT, JPEG, TOKEN, twilio_form
from tests.integration.services import REPO, Proc, ProductEnv, free_port, wait_until

pytestmark = pytest.mark.integration

PUBLIC = "https://intake.example.gov.tr"
RAW = "intake.raw.whatsapp"


def whatsapp_app(settings: Settings) -> FastAPI:
    """The webhook wired as the web server wires it: publisher, then intake, in the lifespan."""
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    intake = build_whatsapp_intake(settings, publisher)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        await intake.start()
        try:
            yield
        finally:
            await intake.stop()
            await publisher.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(build_whatsapp_router(intake))
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.web.max_body_bytes)
    return app


def twilio_env(data_dir: Path, media_port: int | None = None) -> dict[str, str]:
    env = {
        "INTAKE_DATA_DIR": str(data_dir),
        "INTAKE_CONNECTORS__WHATSAPP__ACCOUNT_SID": ACCOUNT,
        "INTAKE_CONNECTORS__WHATSAPP__AUTH_TOKEN": TOKEN,
        "INTAKE_CONNECTORS__WHATSAPP__PUBLIC_URL": PUBLIC,
    }
    if media_port is not None:
        env["INTAKE_CONNECTORS__WHATSAPP__API_BASE_URL"] = f"http://127.0.0.1:{media_port}"
    return env


class ServerThread:
    """uvicorn serving ``app`` on a loopback port from a background thread."""

    def __init__(self, app: FastAPI, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="whatsapp-web", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 60, "uvicorn")
        assert self.server.started, "the web app did not start (see the log)"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class MediaServer:
    """Twilio's media host on loopback: Basic auth on the API paths, answers per path in turn
    (the last one repeats), every request counted."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
        self.hits: Counter[str] = Counter()
        self.expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                authorized = self.headers.get("Authorization") == server.expected
                if self.path.startswith("/2010-04-01/") and not authorized:
                    self.reply(401, b'{"message": "Authenticate"}', {"WWW-Authenticate": "Basic"})
                    return
                answers = server.answers.get(self.path) or [(404, b"", {})]
                self.reply(*(answers.pop(0) if len(answers) > 1 else answers[0]))

            def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    server = MediaServer()
    yield server
    server.close()


def media_path(sid: str, name: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media/{name}"


async def send(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    """POST ``form`` as Twilio would: signed over the public URL, whatever socket it reaches."""
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + WEBHOOK_PATH, form)
    return await client.post(WEBHOOK_PATH, data=form, headers={"X-Twilio-Signature": signature})


def twiml(sid: str) -> str:
    tracking = whatsapp_tracking_number(sid)
    return f"<Message>{REPLY.format(tracking=tracking)}</Message>"


async def read_to_end(bootstrap: str, topic: str) -> list[RawEvent]:
    """Every record on ``topic`` up to its end offsets now, decoded."""
    # Subscribed, so that start() fetches the partitions; then assigned by hand, so that a
    # metadata change cannot reassign them (and reset their positions to the end).
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert tps, f"no partitions of {topic}"
        consumer.unsubscribe()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            values.extend(record.value for records in batch.values() for record in records)
    finally:
        await consumer.stop()
    return [RawEvent.from_bytes(value) for value in values]


async def test_a_photo_message_reaches_the_raw_topic_once_with_its_blob(
    product: tuple[ProductEnv, Path], media_server: MediaServer
) -> None:
    env, data_dir = product
    settings = env.settings(**twilio_env(data_dir, media_server.port))
    photo_sid, flaky_sid = "SM" + uuid.uuid4().hex, "SM" + uuid.uuid4().hex
    photo, cdn = media_path(photo_sid, "ME1"), f"/cdn/{photo_sid}.jpg"
    flaky, broken = media_path(flaky_sid, "ME1"), media_path(flaky_sid, "ME2")
    media_server.answers[photo] = [(302, b"", {"Location": cdn})]
    media_server.answers[cdn] = [(200, JPEG, {"Content-Type": "image/jpeg"})]
    media_server.answers[flaky] = [(500, b"", {}), (503, b"", {}), (200, JPEG, {})]
    media_server.answers[broken] = [(500, b"", {})]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(media_server.url(photo), timeout=5)
    assert refused.value.code == 401  # the media host wants the account's credentials
    media_server.hits.clear()
    photo_form = {
        **twilio_form(photo_sid, body=""),
        "NumMedia": "1",
        "MessageType": "image",
        "MediaUrl0": media_server.url(photo),
        "MediaContentType0": "image/jpeg",
    }
    flaky_form = {
        **twilio_form(flaky_sid, body="Seyhan'da park lambaları yanmıyor, fotoğraflar ekte"),
        "NumMedia": "2",
        "MediaUrl0": media_server.url(flaky),
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": media_server.url(broken),
        "MediaContentType1": "image/jpeg",
    }
    port = free_port()

    with ServerThread(whatsapp_app(settings), port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            first = await send(client, photo_form)
            retry = await send(client, photo_form)  # Twilio did not see the first answer
            second = await send(client, flaky_form)

    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/xml"
    assert twiml(photo_sid) in first.text
    assert retry.status_code == 200 and retry.content == first.content
    assert second.status_code == 200, second.text
    assert media_server.hits[photo] == media_server.hits[cdn] == 1
    assert media_server.hits[flaky] == 3 == media_server.hits[broken]

    events = [
        e for e in await read_to_end(env.bootstrap, RAW) if e.provider_id in (photo_sid, flaky_sid)
    ]
    mine = Counter(e.provider_id for e in events)
    assert (mine[photo_sid], mine[flaky_sid]) == (1, 1)
    by_sid = {e.provider_id: e for e in events}
    blobs = BlobStore(settings.blob_dir, settings.blobs.max_bytes)
    [ref] = by_sid[photo_sid].attachments
    assert blobs.get(ref) == JPEG and ref.content_type == "image/jpeg"
    assert normalize(by_sid[photo_sid]).text == "(fotoğraf)"
    flaky_event = by_sid[flaky_sid]
    assert [blobs.get(r) for r in flaky_event.attachments] == [JPEG]
    assert flaky_event.payload["media_failed"] == [
        {"index": 1, "content_type": "image/jpeg", "reason": "download_failed"}
    ]
    assert normalize(flaky_event).text == flaky_form["Body"]


def start_process(env: ProductEnv, data_dir: Path, port: int) -> Proc:
    """This module as a program: the webhook app on ``port``, until killed."""
    log = env.root / f"whatsapp-{port}.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_whatsapp", str(port)],
            env=env.env(**twilio_env(data_dir)),
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proc = Proc("whatsapp", popen, log)
    env.procs.append(proc)

    def listening() -> bool:
        assert proc.alive(), f"the webhook process died:\n{proc.tail()}"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 60, "the webhook process")  # it listens once its lifespan started
    return proc


async def test_after_a_crash_twilios_retries_store_every_message_exactly_once(
    product: tuple[ProductEnv, Path],
) -> None:
    env, data_dir = product
    forms = [twilio_form("SM" + uuid.uuid4().hex, body=f"Şikâyet {n}") for n in range(30)]
    answered: dict[str, httpx.Response] = {}
    cut_off: list[str] = []
    first_port = free_port()
    first = start_process(env, data_dir, first_port)
    gate = asyncio.Semaphore(4)

    async def deliver(client: httpx.AsyncClient, form: dict[str, str]) -> None:
        async with gate:
            if not first.alive():
                return  # never reached the server: Twilio will retry it
            try:
                response = await send(client, form)
            except httpx.TransportError:
                cut_off.append(form["MessageSid"])  # the process died under this request
                return
            if response.status_code == 200:
                answered[form["MessageSid"]] = response
                if len(answered) >= len(forms) // 2:
                    first.kill()  # SIGKILL, with requests still in flight

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first_port}", timeout=30) as c:
        await asyncio.gather(*(deliver(c, form) for form in forms))
    assert not first.alive()
    assert len(forms) // 2 <= len(answered) < len(forms)
    # A crash between Kafka's acknowledgement and the local save leaves exactly this state
    # for three answered messages: on the topic, but not known locally. The new process must
    # learn them from the topic's tail, or the retries would publish them again.
    lost_save = list(answered)[:3]
    state = sqlite3.connect(data_dir / "connectors" / "whatsapp.sqlite3")
    with state:
        state.executemany("DELETE FROM seen WHERE provider_id = ?", [(s,) for s in lost_save])
    state.close()

    second_port = free_port()
    start_process(env, data_dir, second_port)
    retried = [f for f in forms if f["MessageSid"] not in answered] + [
        f for f in forms if f["MessageSid"] in answered
    ][:6]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second_port}", timeout=30) as c:
        responses = await asyncio.gather(*(send(c, form) for form in retried))

    for form, response in zip(retried, responses, strict=True):
        sid = form["MessageSid"]
        assert response.status_code == 200, response.text
        assert twiml(sid) in response.text
        if sid in answered:
            assert response.content == answered[sid].content
    sids = {form["MessageSid"] for form in forms}
    on_topic = Counter(
        e.provider_id for e in await read_to_end(env.bootstrap, RAW) if e.provider_id in sids
    )
    assert on_topic == Counter(dict.fromkeys(sids, 1)), f"cut off in flight: {cut_off}"


def main() -> None:
    """Serve the webhook app from the environment's settings on the port given."""
    uvicorn.run(whatsapp_app(load_settings()), host="127.0.0.1", port=int(sys.argv[1]))


if __name__ == "__main__":
    main()
