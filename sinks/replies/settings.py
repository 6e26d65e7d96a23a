"""``INTAKE_REPLIES__*``: how replies reach citizens on WhatsApp, e-mail and X.

The Twilio account (``connectors.whatsapp``), the X API host (``connectors.twitter``) and the
SMTP relay (``mail``) have sections of their own; this one holds what only the senders need.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

__all__ = ["PLACEHOLDER_SECRET", "ReplySettings"]

#: The media-link secret's default; refuse it in production.
PLACEHOLDER_SECRET = "change-me"


class ReplySettings(BaseModel):
    """Reply senders: WhatsApp sender number and template, signed media links, X credentials,
    and the retry policy shared by every channel."""

    #: The municipality's WhatsApp sender, E.164 (``+90…``; a ``whatsapp:`` prefix is accepted).
    whatsapp_from: str | None = None
    #: Approved Content template (``HX…``) sent outside the 24-hour window (see ``whatsapp.py``).
    whatsapp_template_sid: str | None = None
    whatsapp_window_hours: float = Field(default=24.0, gt=0, le=24.0)
    #: HMAC key of the collage links Twilio fetches; anyone holding it can mint links.
    media_link_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    media_link_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    twitter_consumer_key: SecretStr | None = None
    twitter_consumer_secret: SecretStr | None = None
    twitter_access_token: SecretStr | None = None
    twitter_access_secret: SecretStr | None = None
    #: Where a public X reply sends the citizen for the details (it never carries them).
    private_channel_hint: str = Field(
        default="Ayrıntılar için DM gönderebilir veya Alo 153'ü arayabilirsiniz.",
        min_length=1,
        max_length=140,
    )
    attempts: int = Field(default=4, ge=1, le=20)
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    #: Seconds before one provider request (Twilio, X) is abandoned.
    request_timeout_s: float = Field(default=30.0, gt=0)

    @property
    def whatsapp_configured(self) -> bool:
        """Whether WhatsApp replies can be sent (the Twilio account is checked separately)."""
        return bool(self.whatsapp_from)

    @property
    def twitter_configured(self) -> bool:
        """Whether all four OAuth 1.0a user-context credentials are set."""
        return all(
            secret is not None and secret.get_secret_value()
            for secret in (
                self.twitter_consumer_key,
                self.twitter_consumer_secret,
                self.twitter_access_token,
                self.twitter_access_secret,
            )
        )

    @property
    def media_secret_is_placeholder(self) -> bool:
        """Whether the media-link secret was left at its default (refuse it in production)."""
        return self.media_link_secret.get_secret_value() in ("", PLACEHOLDER_SECRET)
