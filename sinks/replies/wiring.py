"""Build the senders the settings configure: one per channel, none for a channel left unset."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from schemas.common import Channel
from sinks.blobstore import BlobStore
from sinks.mail import SmtpMailer
from sinks.replies.base import ReplySender
from sinks.replies.email import EmailSender
from sinks.replies.links import MediaLinks
from sinks.replies.settings import ReplySettings
from sinks.replies.twitter import TwitterSender
from sinks.replies.whatsapp import WhatsAppSender

if TYPE_CHECKING:
    from infra.settings import TwilioSettings, TwitterSettings

__all__ = ["build_senders", "media_links"]

log = logging.getLogger(__name__)


def media_links(replies: ReplySettings, public_base_url: str) -> MediaLinks:
    """The signer shared by the WhatsApp sender and the ``/media`` route."""
    return MediaLinks(replies.media_link_secret, public_base_url, replies.media_link_ttl_s)


def build_senders(
    replies: ReplySettings,
    *,
    twilio: TwilioSettings,
    twitter: TwitterSettings,
    mailer: SmtpMailer,
    blobs: BlobStore,
    public_base_url: str | None,
) -> dict[Channel, ReplySender]:
    """E-mail always (without an SMTP host the mailer writes an outbox); WhatsApp when the
    Twilio account, the sender number and the public URL (for the collage links) are set;
    X when the four OAuth 1.0a credentials are set."""
    senders: dict[Channel, ReplySender] = {Channel.EMAIL: EmailSender(mailer, blobs)}
    if not (twilio.account_sid and twilio.auth_token and replies.whatsapp_configured):
        log.info("WhatsApp replies off: Twilio account or INTAKE_REPLIES__WHATSAPP_FROM not set")
    elif not public_base_url:
        log.warning("WhatsApp replies off: INTAKE_WEB__PUBLIC_URL is needed for collage links")
    else:
        links = media_links(replies, public_base_url)
        senders[Channel.WHATSAPP] = WhatsAppSender(twilio, replies, links, blobs)
    if replies.twitter_configured:
        senders[Channel.TWITTER] = TwitterSender(replies, twitter.api_base_url)
    else:
        log.info("X replies off: the OAuth 1.0a credentials (INTAKE_REPLIES__TWITTER_*) not set")
    return senders
