"""Stage 2: a normalized citizen message (``intake.messages``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import AttachmentRef, Channel, CitizenContact, Contract, GeoPoint, UtcDateTime

__all__ = ["ApplicationCheck", "CitizenMessage"]


class ApplicationCheck(Contract):
    """Whether a right-to-information application (Law 4982) can be processed, and why not.

    A natural person gives name, surname, address and a T.C. kimlik no with valid check
    digits, or signs electronically; a legal person gives its title, address and signatory.
    """

    applicant: Literal["gercek-kisi", "tuzel-kisi"]
    valid: bool
    missing: tuple[str, ...] = Field(
        default=(), description="e.g. ad, soyad, adres, tc-kimlik-no, unvan, imza-yetkilisi"
    )
    e_signature: bool = False


class CitizenMessage(Contract):
    """What a citizen said, on which channel, from where, in one shape for every channel.

    Key on the topic: ``message_id`` (``<channel>:<provider id>``).
    """

    schema_version: Literal[1] = 1
    message_id: str = Field(min_length=3, max_length=600)
    tracking_number: str
    channel: Channel
    source: str | None = Field(default=None, description="sub-channel, e.g. alo153, saha, cimer")
    received_at: UtcDateTime
    subject: str | None = None
    text: str = Field(description="the text as the citizen wrote it")
    text_folded: str = Field(
        description="Turkish-casefolded, whitespace-collapsed text for matching"
    )
    citizen: CitizenContact = CitizenContact()
    location: GeoPoint | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    public: bool = Field(default=False, description="a public post (e.g. a mention on X)")
    external_ref: str | None = None
    reply_to_case: str | None = Field(
        default=None, description="case id this message answers (a citizen's follow-up)"
    )
    bilgi_edinme: ApplicationCheck | None = None
    resolved_on_line: bool = Field(
        default=False, description="a call the operator resolved during the call itself"
    )
