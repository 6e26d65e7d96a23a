"""``POST /webhooks/twilio/whatsapp``: Twilio's webhook for incoming WhatsApp messages.

The signature (``X-Twilio-Signature``) is checked with the twilio package's validator over
the public URL Twilio called (from the settings: behind a proxy the socket's scheme and host
differ) with this request's path and query, and over every form parameter received. The
answer is 200 with TwiML naming the tracking number, only after the message is stored.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from connectors.errors import ConnectorError
from connectors.responses import error_response
from connectors.whatsapp.intake import WhatsAppIntake

__all__ = [
    "REPLY",
    "RETRY_AFTER_S",
    "WEBHOOK_PATH",
    "build_whatsapp_router",
    "form_fields",
    "signed_url",
    "twiml_reply",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/twilio/whatsapp"
#: The answer to the citizen; the same for a retry, so it depends on the tracking number only.
REPLY = "Mesajınız alındı. Takip numaranız: {tracking}. Alo 153 Çözüm Merkezi"
#: Seconds a caller is asked to wait when the message could not be stored.
RETRY_AFTER_S = 5
#: More form fields than Twilio ever sends (about 30 for a WhatsApp message with media).
MAX_FORM_FIELDS = 300
_FORM_TYPE = "application/x-www-form-urlencoded"
_MESSAGE_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")


def signed_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: the public URL's scheme and host with this request's path and
    query. A public URL with a path is a prefix the proxy strips, unless it already ends
    with the request's path (then it names the webhook itself)."""
    public = urlsplit(public_url)
    prefix = public.path.rstrip("/")
    full_path = prefix if prefix.endswith(path) else prefix + path
    return urlunsplit((public.scheme, public.netloc, full_path, query or public.query, ""))


def form_fields(form: FormData) -> dict[str, str | list[str]]:
    """Every parameter as a string (a repeated one as the list of its values)."""
    fields: dict[str, str | list[str]] = {}
    for key in form:
        values = [str(value) for value in form.getlist(key)]
        fields[key] = values[0] if len(values) == 1 else values
    return fields


def twiml_reply(tracking: str) -> str:
    """The TwiML answer that sends the citizen the tracking number."""
    response = MessagingResponse()
    response.message(REPLY.format(tracking=tracking))
    return str(response)


def build_whatsapp_router(intake: WhatsAppIntake) -> APIRouter:
    """The router with ``POST /webhooks/twilio/whatsapp``; see the module docstring."""
    router = APIRouter(tags=["whatsapp"])

    def validator() -> RequestValidator:
        return RequestValidator(intake.auth_token)

    @router.post(
        WEBHOOK_PATH,
        summary="Twilio webhook: an incoming WhatsApp message",
        response_class=Response,
        responses={200: {"content": {"application/xml": {}}, "description": "TwiML reply"}},
    )
    async def twilio_whatsapp(request: Request) -> Response:
        public_url = intake.public_url
        if not intake.configured or not public_url:
            missing = "AUTH_TOKEN" if not intake.configured else "PUBLIC_URL"
            return error_response(
                503,
                "not_configured",
                "The WhatsApp intake is not configured: set "
                f"INTAKE_CONNECTORS__WHATSAPP__{missing}",
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != _FORM_TYPE:
            return error_response(
                415, "unsupported_media_type", f"Twilio webhooks are sent as {_FORM_TYPE}"
            )
        try:
            form = await request.form(max_fields=MAX_FORM_FIELDS)
        except HTTPException as exc:
            return error_response(400, "bad_request", f"The form could not be read: {exc.detail}")
        try:
            path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
            url = signed_url(
                public_url,
                path.decode("latin-1"),
                request.scope.get("query_string", b"").decode("latin-1"),
            )
            signature = request.headers.get(SIGNATURE_HEADER, "")
            algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
            if not signature or not validator().validate(url, form, signature, algorithm):
                log.warning("whatsapp webhook refused: missing or invalid %s", SIGNATURE_HEADER)
                return error_response(
                    403, "forbidden", f"Missing or invalid {SIGNATURE_HEADER} for {url}"
                )
            fields = form_fields(form)
        finally:
            await form.close()
        sid = fields.get("MessageSid")
        if not isinstance(sid, str) or not _MESSAGE_SID.match(sid):
            return error_response(400, "bad_request", "MessageSid is missing or malformed")
        try:
            receipt = await intake.receive(fields)
        except (ConnectorError, OSError, sqlite3.Error) as exc:
            log.warning("whatsapp message %s not stored: %s: %s", sid, type(exc).__name__, exc)
            return error_response(
                503,
                "not_recorded",
                "The message could not be stored right now; Twilio may retry it.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return Response(twiml_reply(receipt.tracking_number), media_type="application/xml")

    return router
