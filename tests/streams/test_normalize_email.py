"""Raw e-mail events → citizen messages (the pure normalizer over parsed-mail payloads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.mail.parse import parse_mail
from schemas.ids import tracking_number
from schemas.raw import RawEvent
from streams.errors import BadPayload
from streams.normalize import normalize
from tests.connectors.test_mail_parse import TURKISH, alternative_mail, cp1254_mail

RECEIVED = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
CASE = tracking_number("email:first")


def _raw(payload: dict[str, Any], provider_id: str = "m1@example.com") -> RawEvent:
    return RawEvent(channel="email", provider_id=provider_id, received_at=RECEIVED, payload=payload)


def _from_mail(raw: bytes) -> RawEvent:
    parsed = parse_mail(raw)
    return _raw(parsed.payload, parsed.provider_id)


def test_a_parsed_mail_becomes_a_message_from_its_sender() -> None:
    msg = normalize(_from_mail(cp1254_mail("n1@example.com")))
    assert msg.message_id == "email:n1@example.com" and msg.channel == "email"
    assert msg.source == "email" and msg.subject == "Şikayet çöp"
    assert msg.text == TURKISH and msg.text_folded.startswith("şikayet çöp şikâyetim")
    assert msg.citizen.name == "Ayşe Kaya" and msg.citizen.email == "ayse@example.com"
    assert msg.received_at == RECEIVED and msg.reply_to_case is None and msg.bilgi_edinme is None


def test_a_follow_up_keeps_its_case() -> None:
    raw = alternative_mail("n2@x", "Hâlâ çözülmedi.", In_Reply_To=f"<case-{CASE}@alo153.test>")
    assert normalize(_from_mail(raw)).reply_to_case == CASE


def test_a_malformed_case_reference_is_ignored() -> None:
    assert normalize(_raw({"text": "x", "reply_to_case": "153-XXXXX-XXXXXX"})).reply_to_case is None


def test_a_bilgi_edinme_application_maps_to_its_check_and_the_citizen() -> None:
    text = (
        "Bilgi edinme başvurusu: ihale listesi.\nAd Soyad: Ali Can\n"
        "Adres: Kurtuluş Mah. 64011 Sok. No: 5 Seyhan\nTCKN: 12345678950\n"
    )
    msg = normalize(_from_mail(alternative_mail("n3@x", text)))
    assert msg.bilgi_edinme is not None
    assert (msg.bilgi_edinme.applicant, msg.bilgi_edinme.valid) == ("gercek-kisi", True)
    assert msg.citizen.tc_kimlik_no == "12345678950"
    assert msg.citizen.address == "Kurtuluş Mah. 64011 Sok. No: 5 Seyhan"
    assert msg.citizen.name == "Mehmet Öztürk"  # the From display name comes first


def test_an_invalid_application_lists_what_is_missing() -> None:
    msg = normalize(_from_mail(alternative_mail("n4@x", "4982 sayılı Kanun uyarınca soruyorum.")))
    assert msg.bilgi_edinme is not None and not msg.bilgi_edinme.valid
    assert msg.bilgi_edinme.missing == ("adres", "tc-kimlik-no")  # name from the sender


def test_a_sender_without_display_name_takes_the_applications_name() -> None:
    payload = {
        "text": "Bilgi edinme",
        "from": {"name": None, "address": "a@example.com"},
        "bilgi_edinme": {
            "applicant": "gercek-kisi",
            "valid": False,
            "missing": ["adres"],
            "name": "Ali",
            "surname": "Can",
        },
    }
    assert normalize(_raw(payload)).citizen.name == "Ali Can"


@pytest.mark.parametrize(
    "payload",
    [{}, {"text": 3}, {"text": "x", "bilgi_edinme": {"applicant": "robot", "valid": True}}],
)
def test_bad_payloads_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(BadPayload):
        normalize(_raw(payload))
