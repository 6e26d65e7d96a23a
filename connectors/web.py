"""The web server: the intake API, health and readiness probes, and the request-size guard.

``intake web`` runs ``uvicorn.run(build_from_settings(settings), host=..., port=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.api import build_intake_router
from connectors.calls import build_calls_router
from connectors.publisher import KafkaPublisher, Publisher
from connectors.responses import error_response
from connectors.runtime import Delivery
from connectors.state import ConnectorState
from connectors.whatsapp import build_whatsapp_intake, build_whatsapp_router
from infra.settings import Settings
from sinks.blobstore import BlobStore
from sinks.replies.links import media_router
from sinks.replies.wiring import media_links

__all__ = ["BodySizeLimit", "build_from_settings", "create_web_app"]

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"[0-9]{1,19}")


class _BodyTooLarge(Exception):
    """Raised inside ``receive`` so that the application stops reading at once."""


class BodySizeLimit:
    """Pure ASGI middleware: answer 413 to request bodies over ``max_body_bytes``.

    A declared ``Content-Length`` over the limit is refused before the application runs.
    Without one (chunked transfer) or when the client lies, the bytes are counted as they
    arrive; the first chunk past the limit makes ``receive`` raise, and the 413 replaces
    whatever the application would have answered. The rest of the body is never read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self, scope: Scope) -> JSONResponse:
        # The unread rest of the body would keep the connection busy: HTTP/1 closes it.
        http1 = scope.get("http_version", "1.1") in ("1.0", "1.1")
        return error_response(
            413,
            "payload_too_large",
            f"The request body is larger than the limit of {self.max_body_bytes} bytes",
            headers={"Connection": "close"} if http1 else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not _DIGITS.fullmatch(declared.strip()):
                response = error_response(400, "bad_request", "Content-Length is not a number")
                await response(scope, receive, send)
                return
            if int(declared) > self.max_body_bytes:
                await self._too_large(scope)(scope, receive, send)
                return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the application's own answer to a cut-off body is replaced below
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise  # a failure of its own, not the consequence of a cut-off body
        if exceeded:
            if response_started:
                log.warning("request body over the limit after the response had started")
                return
            await self._too_large(scope)(scope, receive, send)


def create_web_app(
    settings: Settings, publisher: Publisher, blobs: BlobStore, calls: Delivery | None = None
) -> FastAPI:
    """The FastAPI application; its lifespan starts and stops ``publisher`` and the relays
    that publish what the push channels kept in their outboxes while Kafka was away."""
    calls = calls or Delivery(
        "calls-web", publisher, ConnectorState(settings.connector_state_dir / "calls-web.sqlite3")
    )
    whatsapp = build_whatsapp_intake(settings, publisher)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        await whatsapp.start()
        stop = asyncio.Event()
        relays = [asyncio.create_task(calls.relay(settings.connectors.relay_interval_s, stop))]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*relays, return_exceptions=True)
            await whatsapp.stop()
            await publisher.stop()

    app = FastAPI(
        title="Alo 153 intake",
        summary="Citizen messages entered by operators, the field team and the desks",
        lifespan=lifespan,
    )
    app.include_router(build_intake_router(settings, publisher, blobs))
    app.include_router(build_calls_router(settings, calls))
    app.include_router(build_whatsapp_router(whatsapp))
    # Collages sent to citizens, behind signed links that expire (sinks.replies.links).
    app.include_router(media_router(media_links(settings.replies, settings.public_base_url), blobs))
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.web.max_body_bytes)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        """The publisher is connected, so an intake can be recorded."""
        if publisher.started:
            return JSONResponse({"status": "ok"})
        return error_response(503, "not_ready", "The Kafka publisher is not connected")

    return app


def build_from_settings(settings: Settings) -> FastAPI:
    """The production wiring: a Kafka publisher and the blob store under the data directory."""
    publisher = KafkaPublisher(settings.kafka, timeout_s=settings.web.publish_timeout_s)
    blobs = BlobStore(settings.blob_dir, settings.blobs.max_bytes)
    return create_web_app(settings, publisher, blobs)
