"""Mail from the municipality's box (``intake.raw.email``).

The payload is the parsed mail of ``connectors.mail.parse``: ``from`` ({name, address}),
``subject``, ``text`` (the citizen's own words: quotes and signature already cut),
``reply_to_case`` (a tracking number the mail follows up) and ``bilgi_edinme`` (the Law 4982
form check, with the applicant's details as found). A follow-up keeps its case id; a
right-to-information application carries its check and the applicant's identity.
"""

from __future__ import annotations

from typing import Any

from schemas.common import CitizenContact
from schemas.ids import is_tracking_number
from schemas.message import ApplicationCheck, CitizenMessage
from schemas.raw import RawEvent
from streams.errors import BadPayload
from streams.normalizers.common import build_message
from streams.pii import is_valid_tc_kimlik_no

__all__ = ["application_check", "normalize"]


def _text(value: Any, limit: int) -> str | None:
    return (value.strip()[:limit] or None) if isinstance(value, str) else None


def application_check(data: Any) -> ApplicationCheck | None:
    """The ``bilgi_edinme`` payload entry as an ``ApplicationCheck`` (None when absent)."""
    if not isinstance(data, dict):
        return None
    try:
        return ApplicationCheck(
            applicant=data["applicant"],
            valid=bool(data["valid"]),
            missing=tuple(data.get("missing") or ()),
            e_signature=bool(data.get("e_signature")),
        )
    except (KeyError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise BadPayload(f"the bilgi_edinme entry is malformed: {exc}") from exc


def _citizen(payload: dict[str, Any]) -> CitizenContact:
    found, check = payload.get("from"), payload.get("bilgi_edinme")
    sender: dict[str, Any] = found if isinstance(found, dict) else {}
    application: dict[str, Any] = check if isinstance(check, dict) else {}
    given = " ".join(filter(None, [application.get("name"), application.get("surname")]))
    tc = application.get("tc_kimlik_no")
    return CitizenContact(
        name=_text(sender.get("name"), 255) or _text(given, 255),
        email=_text(sender.get("address"), 320),
        tc_kimlik_no=tc if isinstance(tc, str) and is_valid_tc_kimlik_no(tc) else None,
        address=_text(application.get("address"), 1000),
    )


def normalize(raw: RawEvent) -> CitizenMessage:
    """A parsed mail as a citizen message: sender, subject, text, case follow-up, 4982 check."""
    payload = raw.payload
    text = payload.get("text")
    if not isinstance(text, str):
        raise BadPayload("the email payload has no text")
    case = payload.get("reply_to_case")
    case = case.strip().upper() if isinstance(case, str) and is_tracking_number(case) else None
    return build_message(
        raw,
        text=text,
        subject=_text(payload.get("subject"), 998),
        source="email",
        citizen=_citizen(payload),
        reply_to_case=case,
        bilgi_edinme=application_check(payload.get("bilgi_edinme")),
    )
