"""WhatsApp through a Twilio webhook: a push channel, served by the web server.

``build_whatsapp_router(intake)`` adds ``POST /webhooks/twilio/whatsapp`` to the web app;
``build_whatsapp_intake(settings, publisher)`` wires the intake, whose ``start``/``stop``
belong in the web app's lifespan (they run the outbox relay and the silence alarm).

``router`` checks the signature and answers TwiML, ``intake`` stores each message once
(raw event on ``intake.raw.whatsapp``, keyed by ``MessageSid``), ``media`` downloads the
photos into the blob store.
"""

from __future__ import annotations

from connectors.whatsapp.intake import (
    NAME,
    Receipt,
    WhatsAppIntake,
    build_whatsapp_intake,
    whatsapp_event,
    whatsapp_tracking_number,
)
from connectors.whatsapp.media import MediaFetcher, MediaItem, MediaResult, media_items
from connectors.whatsapp.router import (
    REPLY,
    WEBHOOK_PATH,
    build_whatsapp_router,
    signed_url,
    twiml_reply,
)

__all__ = [
    "NAME",
    "REPLY",
    "WEBHOOK_PATH",
    "MediaFetcher",
    "MediaItem",
    "MediaResult",
    "Receipt",
    "WhatsAppIntake",
    "build_whatsapp_intake",
    "build_whatsapp_router",
    "media_items",
    "signed_url",
    "twiml_reply",
    "whatsapp_event",
    "whatsapp_tracking_number",
]
