"""Which senders the settings build, and the settings' own checks."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from infra.settings import TwilioSettings, TwitterSettings
from schemas.common import Channel
from sinks.blobstore import BlobStore
from sinks.mail import SmtpMailer, SmtpSettings
from sinks.replies.email import EmailSender
from sinks.replies.settings import ReplySettings
from sinks.replies.twitter import TwitterSender
from sinks.replies.whatsapp import WhatsAppSender
from sinks.replies.wiring import build_senders

TWILIO = TwilioSettings(account_sid="AC" + "1" * 32, auth_token=SecretStr("t"))
X_KEYS = {
    "twitter_consumer_key": SecretStr("ck"),
    "twitter_consumer_secret": SecretStr("cs"),
    "twitter_access_token": SecretStr("at"),
    "twitter_access_secret": SecretStr("as"),
}


def build(replies: ReplySettings, tmp_path: Path, public_url: str | None) -> dict[Channel, object]:
    return dict(
        build_senders(
            replies,
            twilio=TWILIO,
            twitter=TwitterSettings(),
            mailer=SmtpMailer(SmtpSettings(), tmp_path / "outbox"),
            blobs=BlobStore(tmp_path / "blobs", 1024),
            public_base_url=public_url,
        )
    )


def test_only_configured_channels_get_a_sender(tmp_path: Path) -> None:
    bare = build(ReplySettings(), tmp_path, "https://intake.example.gov.tr")
    assert set(bare) == {Channel.EMAIL} and isinstance(bare[Channel.EMAIL], EmailSender)

    full = ReplySettings(whatsapp_from="+908502221530", **X_KEYS)
    senders = build(full, tmp_path, "https://intake.example.gov.tr")
    assert isinstance(senders[Channel.WHATSAPP], WhatsAppSender)
    assert isinstance(senders[Channel.TWITTER], TwitterSender)
    # Without a public URL Twilio could not fetch the collage: no WhatsApp sender.
    assert Channel.WHATSAPP not in build(full, tmp_path, None)


def test_settings_checks() -> None:
    assert ReplySettings().media_secret_is_placeholder
    assert not ReplySettings(media_link_secret=SecretStr("s3cr3t-long")).media_secret_is_placeholder
    assert ReplySettings(**X_KEYS).twitter_configured
    partial = {**X_KEYS, "twitter_access_secret": SecretStr("")}
    assert not ReplySettings(**partial).twitter_configured
    assert not ReplySettings().whatsapp_configured
