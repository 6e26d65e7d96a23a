"""Right-to-information (Law 4982) applications by e-mail: recognised, and their form checked."""

from __future__ import annotations

import pytest

from connectors.mail.bilgi_edinme import check_application, is_application
from streams.pii import is_valid_tc_kimlik_no

TCKN = "12345678950"
ADDRESS = "Kurtuluş Mah. 64011 Sok. No: 5 D: 3"


def test_the_sample_kimlik_no_is_valid() -> None:
    assert is_valid_tc_kimlik_no(TCKN) and not is_valid_tc_kimlik_no("12345678951")


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Bilgi Edinme Başvurusu", ""),
        ("", "BİLGİ EDİNME kapsamında soruyorum"),
        ("", "bilgi edinme hakkı kapsamında"),
        ("", "4982 sayılı Kanun uyarınca"),
        ("4982 s. Kanun", ""),
        ("", "Kanun No: 4982 gereği"),
    ],
)
def test_applications_are_recognised(subject: str, text: str) -> None:
    assert is_application(subject, text)


@pytest.mark.parametrize(
    "text", ["Evim 4982 numaralı parselde", "Sokakta çöp var", "bilgi verir misiniz"]
)
def test_other_mail_is_not_an_application(text: str) -> None:
    assert not is_application("Şikayet", text)


def test_a_complete_natural_person_with_labels_is_valid() -> None:
    text = (
        "4982 sayılı Kanun kapsamında bilgi talep ediyorum.\n\n"
        f"Adı Soyadı: Ayşe Nur Kaya\nAdres: {ADDRESS}\nSeyhan/ADANA\nT.C. Kimlik No: {TCKN}\n"
    )
    result = check_application(text)
    assert (result.applicant, result.valid, result.missing) == ("gercek-kisi", True, ())
    assert (result.name, result.surname) == ("Ayşe Nur", "Kaya")
    assert result.address == f"{ADDRESS} Seyhan/ADANA" and result.tc_kimlik_no == TCKN


@pytest.mark.parametrize(
    ("lines", "missing"),
    [
        (f"Ad Soyad: Ali Can\nAdres: {ADDRESS}", ("tc-kimlik-no",)),
        (f"Ad Soyad: Ali\nAdres: {ADDRESS}\nTCKN: {TCKN}", ("soyad",)),
        (f"Adı: Ali\nSoyadı: Can\nTC: {TCKN}", ("adres",)),
        (f"Adres: {ADDRESS}\nTCKN: {TCKN}", ("ad", "soyad")),
        ("", ("ad", "soyad", "adres", "tc-kimlik-no")),
    ],
)
def test_missing_items_are_named_with_their_codes(lines: str, missing: tuple[str, ...]) -> None:
    result = check_application(f"Bilgi edinme başvurusu.\n{lines}\n")
    assert result.applicant == "gercek-kisi" and not result.valid
    assert result.missing == missing


def test_a_kimlik_no_with_wrong_check_digits_is_missing_and_noted() -> None:
    result = check_application(
        f"Bilgi edinme.\nAd Soyad: Ali Can\nAdres: {ADDRESS}\nTCKN: 12345678951"
    )
    assert result.missing == ("tc-kimlik-no",) and result.tc_kimlik_no is None
    assert result.notes and "doğrulanamadı" in result.notes[0]


def test_free_text_fallback_finds_name_address_and_kimlik_no() -> None:
    text = (
        "Merhaba, ben Hasan Yıldız. Bilgi edinme hakkımı kullanarak soruyorum.\n"
        f"Gazipaşa Bulvarı No: 12 D: 4 Seyhan/Adana adresinde oturuyorum, kimliğim {TCKN}.\n"
    )
    result = check_application(text)
    assert result.valid, result
    assert (result.name, result.surname, result.tc_kimlik_no) == ("Hasan", "Yıldız", TCKN)


def test_the_name_under_the_closing_or_the_sender_name_is_used() -> None:
    body = (
        f"Bilgi edinme başvurusu.\nAdres: {ADDRESS}\nTCKN: {TCKN}\n\nSaygılarımla,\nFatma Şahin\n"
    )
    assert check_application(body).valid
    bare = f"Bilgi edinme başvurusu.\nAdres: {ADDRESS}\nTCKN: {TCKN}\n"
    assert check_application(bare, sender_name="Fatma Şahin").surname == "Şahin"
    assert check_application(bare, sender_name="info").missing == ("ad", "soyad")


def test_an_e_signature_makes_a_bare_application_valid() -> None:
    result = check_application("Bilgi edinme başvurumdur.", e_signature=True)
    assert result.valid and result.e_signature and result.missing == ()


def test_a_legal_person_in_the_signature_needs_title_address_signatory() -> None:
    text = (
        "Bilgi edinme kapsamında ihale bilgilerini talep ederiz.\n\nSaygılarımızla,\n"
        "Ali Veli\nGenel Müdür\nÇukurova Yapı Malzemeleri A.Ş.\n"
        "Adres: Turhan Cemal Beriker Bulvarı No: 12 Seyhan/Adana\n"
    )
    result = check_application(text)
    assert (result.applicant, result.valid, result.missing) == ("tuzel-kisi", True, ())
    assert result.title == "Çukurova Yapı Malzemeleri A.Ş." and result.signatory == "Ali Veli"


@pytest.mark.parametrize(
    "title",
    ["Seyhan Esnaf Derneği", "Adana Eğitim Vakfı", "Kozan Tarım Kooperatifi", "Toros Ltd. Şti."],
)
def test_a_legal_person_without_address_or_signatory(title: str) -> None:
    result = check_application(f"Bilgi edinme başvurumuzdur.\n\n{title}\n")
    assert result.applicant == "tuzel-kisi" and result.title == title
    assert result.missing == ("adres", "imza-yetkilisi") and not result.valid


def test_labelled_title_and_signatory() -> None:
    text = (
        "Bilgi edinme başvurusu\nUnvan: Yüreğir Gıda Sanayi A.Ş.\n"
        f"Adres: {ADDRESS}\nİmza Yetkilisi: Kemal Sunal\n"
    )
    result = check_application(text)
    assert result.applicant == "tuzel-kisi" and result.valid
    assert result.signatory == "Kemal Sunal"


def test_a_company_named_in_the_complaint_body_does_not_make_a_legal_person() -> None:
    text = (
        "Bilgi edinme: Çukurova Elektrik A.Ş. ekiplerinin sokağımızda açtığı çukur ne zaman "
        "kapatılacak, bilgi verir misiniz?\n\n"
        f"Ad Soyad: Ali Can\nAdres: {ADDRESS}\nTCKN: {TCKN}\n"
    )
    result = check_application(text)
    assert result.applicant == "gercek-kisi" and result.valid


def test_payload_form_is_json_ready() -> None:
    data = check_application("Bilgi edinme", e_signature=False).to_payload()
    assert data["missing"] == ["ad", "soyad", "adres", "tc-kimlik-no"]
    assert data["applicant"] == "gercek-kisi" and data["notes"] == []
