"""Mail bytes → payload: charsets, HTML, quotes, signatures, forwards, attachments, replies,
and the third-party enmime corpus of real-world and broken MIME (never raises)."""

from __future__ import annotations

import contextlib
import json
import os
import quopri
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.charset import decode_bytes, decode_header_value
from connectors.mail.headers import mail_key
from connectors.mail.parse import MailRejected, ParsedMail, parse_mail
from connectors.mail.session import mail_event
from connectors.mail.text import html_to_text, trim_reply
from schemas.ids import tracking_number
from schemas.raw import RawEvent
from sinks.blobstore import BlobStore

ENMIME = Path("/work/shared/data/mime/enmime")
RECEIVED = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
PDF = b"%PDF-1.4\n" + b"0" * 200 + b"\n%%EOF\n"
TURKISH = "Şikâyetim: Yüreğir'de çöp konteynerı taşıyor, İnönü Caddesi ılık su ğüşıöç"
CASE = tracking_number("email:earlier-complaint")


# -- builders shared with tests/integration/test_imap.py ---------------------------------


def _headers(
    mid: str, subject: str, sender: str = "=?utf-8?q?Ay=C5=9Fe_Kaya?= <ayse@example.com>"
) -> str:
    return (
        f"From: {sender}\r\nTo: alo153@adana.bel.tr\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\nDate: Sun, 22 Nov 2026 10:15:00 +0300\r\nMIME-Version: 1.0\r\n"
    )


def cp1254_mail(mid: str) -> bytes:
    """Plain text in windows-1254, 8-bit, subject RFC 2047 Q-encoded in windows-1254."""
    subject = "=?windows-1254?Q?=DEikayet_=E7=F6p?="
    head = _headers(mid, subject, "=?windows-1254?Q?Ay=FEe_Kaya?= <ayse@example.com>")
    head += "Content-Type: text/plain; charset=windows-1254\r\nContent-Transfer-Encoding: 8bit\r\n"
    return head.encode("ascii") + b"\r\n" + TURKISH.encode("cp1254") + b"\r\n"


def iso88599_mail(mid: str) -> bytes:
    """Quoted-printable ISO-8859-9, subject B-encoded in ISO-8859-9."""
    head = _headers(mid, "=?iso-8859-9?B?U3UgYXL9emFz/Q==?=")
    head += "Content-Type: text/plain; charset=iso-8859-9\r\n"
    head += "Content-Transfer-Encoding: quoted-printable\r\n"
    return head.encode("ascii") + b"\r\n" + quopri.encodestring(TURKISH.encode("iso-8859-9"))


def alternative_mail(mid: str, text: str = TURKISH, **headers: str) -> bytes:
    """multipart/alternative (UTF-8 plain + HTML), as Gmail or Outlook send it."""
    msg = EmailMessage()
    msg["From"] = "Mehmet Öztürk <mehmet@example.com>"
    msg["To"] = "alo153@adana.bel.tr"
    msg["Subject"] = headers.pop("subject", "Çukurova'da su kesintisi")
    msg["Message-ID"] = f"<{mid}>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    return msg.as_bytes()


def html_only_mail(mid: str) -> bytes:
    """HTML only, with a style, a script, line breaks and a quoted earlier message."""
    msg = EmailMessage()
    msg["From"] = "Zeynep <zeynep@example.com>"
    msg["Subject"] = "Otobüs durağı"
    msg["Message-ID"] = f"<{mid}>"
    html = (
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>"
        "<div>Merhaba,</div><div>Barajyolu durağının camı kırık.<br>Lütfen onarın.</div>"
        "<div class='gmail_quote'>On Fri, Nov 20, 2026 at 10:00 AM Alo 153 wrote:<br>"
        "<blockquote>Başvurunuz alındı.</blockquote></div></body></html>"
    )
    msg.set_content(html, subtype="html")
    return msg.as_bytes()


def inline_image_mail(mid: str) -> bytes:
    """multipart/alternative with a multipart/related HTML part holding a pasted photo."""
    msg = EmailMessage()
    msg["From"] = "Ali Can <ali@example.com>"
    msg["Subject"] = "Çukur"
    msg["Message-ID"] = f"<{mid}>"
    msg.set_content("Yolda büyük bir çukur var, fotoğraf ekte.")
    msg.add_alternative('<p>Yolda büyük bir çukur var.</p><img src="cid:foto1@x">', subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<foto1@x>")
    return msg.as_bytes()


def attachment_mail(mid: str, data: bytes = PDF, filename: str = "dilekçe.pdf") -> bytes:
    """A text with a file attached (the name has Turkish letters: RFC 2231)."""
    msg = EmailMessage()
    msg["From"] = "Hatice <hatice@example.com>"
    msg["Subject"] = "Dilekçe ekte"
    msg["Message-ID"] = f"<{mid}>"
    msg.set_content("Dilekçem ektedir.")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes()


def malformed_mime_mail(mid: str) -> bytes:
    """Broken but readable: no closing boundary, bad base64, an unknown charset."""
    head = _headers(mid, "Bozuk ileti")
    head += 'Content-Type: multipart/mixed; boundary="sinir"\r\n'
    body = (
        "\r\n--sinir\r\nContent-Type: text/plain; charset=x-bilinmeyen\r\n\r\n"
        "Kald\xc4\xb1r\xc4\xb1m i\xc5\x9fgali var.\r\n"
        "--sinir\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nQUJD!!!RA=\r\n"
    )
    return head.encode("ascii") + body.encode("latin-1")


#: No header field at all (and no NUL: IMAP servers rewrite those on APPEND).
NOT_A_MAIL = b"\x89\xff\xfe binary junk that has no header at all \x01\x02\r\n" * 3


# -- charsets and headers -------------------------------------------------------------------


def test_windows_1254_body_and_rfc2047_headers_are_decoded() -> None:
    parsed = parse_mail(cp1254_mail("a@x"))
    assert parsed.payload["text"] == TURKISH
    assert parsed.payload["subject"] == "Şikayet çöp"
    assert parsed.payload["from"] == {"name": "Ayşe Kaya", "address": "ayse@example.com"}
    assert parsed.provider_id == "a@x" and parsed.payload["message_id"] == "a@x"


def test_iso_8859_9_quoted_printable_is_decoded() -> None:
    parsed = parse_mail(iso88599_mail("b@x"))
    assert parsed.payload["text"] == TURKISH
    assert parsed.payload["subject"] == "Su arızası"


@pytest.mark.parametrize(
    ("declared", "encoding"),
    [
        ("iso-8859-1", "cp1254"),  # a Western label on Turkish bytes
        ("utf-8", "cp1254"),  # a UTF-8 label on windows-1254 bytes
        ("iso-8859-1", "utf-8"),  # a Western label on UTF-8
        ("us-ascii", "utf-8"),
        (None, "utf-8"),
        ("x-unknown", "cp1254"),
    ],
)
def test_mislabelled_charsets_still_give_turkish_text(declared: str | None, encoding: str) -> None:
    text, _ = decode_bytes(TURKISH.encode(encoding), declared)
    assert text == TURKISH


def test_raw_8bit_and_split_encoded_words_in_headers() -> None:
    assert decode_header_value(
        "Su kesintisi – Çukurova".encode().decode("ascii", "surrogateescape")
    ) == ("Su kesintisi – Çukurova")
    # one UTF-8 character split over two encoded words, and a broken word kept as it is
    assert decode_header_value("=?utf-8?b?xZ5p?= =?utf-8?b?a2F5ZXQ=?=") == "Şikayet"
    assert decode_header_value("=?utf-8?q?ok?= =?bogus?x?zz?=") == "ok =?bogus?x?zz?="


def test_missing_message_id_gives_a_stable_hash_key() -> None:
    raw = cp1254_mail("c@x").replace(b"Message-ID: <c@x>\r\n", b"")
    first, second = parse_mail(raw), parse_mail(raw)
    assert first.provider_id == second.provider_id == mail_key(raw)
    assert first.provider_id.startswith("sha256:") and first.payload["message_id"] is None


# -- structure: alternative, HTML only, inline images, attachments, malformed -------------


def test_alternative_prefers_the_plain_part() -> None:
    parsed = parse_mail(alternative_mail("d@x"))
    assert parsed.payload["text"] == TURKISH and parsed.payload["html_only"] is False
    assert parsed.attachments == ()


def test_html_only_becomes_text_without_script_style_or_quote() -> None:
    payload = parse_mail(html_only_mail("e@x")).payload
    assert payload["html_only"] is True
    assert payload["text"] == "Merhaba,\nBarajyolu durağının camı kırık.\nLütfen onarın."
    assert payload["quoted"] is True


def test_inline_image_of_the_html_alternative_is_kept() -> None:
    parsed = parse_mail(inline_image_mail("f@x"))
    assert parsed.payload["text"] == "Yolda büyük bir çukur var, fotoğraf ekte."
    (image,) = parsed.attachments
    assert image.data == PNG and image.inline and image.content_id == "foto1@x"


def test_attachment_keeps_its_turkish_file_name() -> None:
    (pdf,) = parse_mail(attachment_mail("g@x")).attachments
    assert pdf.filename == "dilekçe.pdf" and pdf.data == PDF and not pdf.inline


def test_malformed_mime_is_read_with_notes() -> None:
    payload = parse_mail(malformed_mime_mail("h@x")).payload
    assert payload["text"] == "Kaldırım işgali var."
    assert any("MIME defects" in note for note in payload["notes"])


@pytest.mark.parametrize("raw", [b"", b"  \r\n", NOT_A_MAIL])
def test_bytes_that_are_no_mail_are_rejected_with_a_reason(raw: bytes) -> None:
    with pytest.raises(MailRejected, match=r"\w"):
        parse_mail(raw)


# -- quotes, signatures, forwards ------------------------------------------------------------


def test_turkish_gmail_reply_and_closing_signature_are_trimmed() -> None:
    body = (
        "Konteyner hâlâ boşaltılmadı.\n\nSaygılarımla,\nAyşe Kaya\n0532 000 00 00\n\n"
        "iPhone'umdan gönderildi\n\n22 Kas 2026 Paz, 10:15 tarihinde Alo 153 <alo153@adana.bel.tr>"
        "\nşunu yazdı:\n> Başvurunuz alındı.\n"
    )
    trimmed = trim_reply(body)
    assert trimmed.text == "Konteyner hâlâ boşaltılmadı." and trimmed.quoted
    assert trimmed.signature is not None and "Ayşe Kaya" in trimmed.signature


@pytest.mark.parametrize(
    "marker",
    [
        "-----Original Message-----\nFrom: Alo 153\nSent: Friday\nTo: x\nSubject: y",
        "-----Özgün İleti-----\nKimden: Alo 153\nGönderildi: Cuma\nKime: x\nKonu: y",
        "________________________________\nFrom: Alo 153 <a@b>\nSent: Friday\nTo: x",
        "On Fri, Nov 20, 2026 at 10:00 AM Alo 153 <a@b> wrote:\n> eski",
        "-- \nMehmet Öztürk\nMühendis",
        "Sent from my iPhone",
    ],
)
def test_quotes_and_signatures_of_common_clients_are_cut(marker: str) -> None:
    assert trim_reply(f"Sorun devam ediyor.\n\n{marker}\n").text == "Sorun devam ediyor."


def test_a_greeting_is_not_a_signature_and_interleaved_answers_stay() -> None:
    body = "İyi çalışmalar,\nMahallemizde iki gündür su yok.\nYardımcı olur musunuz?"
    assert trim_reply(body).text == body
    bottom = "On Fri, Nov 20, 2026 Alo 153 wrote:\n> Adresiniz nedir?\n\nSeyhan, Gazipaşa Blv."
    assert trim_reply(bottom).text == "Seyhan, Gazipaşa Blv."


@pytest.mark.parametrize(
    "marker", ["---------- Forwarded message ---------", "---------- İletilen ileti ---------"]
)
def test_forwarded_mail_keeps_the_forwarded_content(marker: str) -> None:
    body = (
        f"Komşumun şikâyetini iletiyorum.\n\n{marker}\nFrom: Mehmet <m@example.com>\n"
        "Date: Sat, 21 Nov 2026\nSubject: Kaldırım işgali\nTo: <ben@example.com>\n\n"
        "Reşatbey'de esnaf kaldırımı işgal ediyor.\n"
    )
    trimmed = trim_reply(body)
    assert trimmed.text == (
        "Komşumun şikâyetini iletiyorum.\n\nReşatbey'de esnaf kaldırımı işgal ediyor."
    )
    assert trimmed.forwarded == {
        "from": "Mehmet <m@example.com>",
        "date": "Sat, 21 Nov 2026",
        "subject": "Kaldırım işgali",
        "to": "<ben@example.com>",
    }


def test_mail_forwarded_as_an_attachment_gives_its_text() -> None:
    inner = EmailMessage()
    inner["From"] = "Komşu <k@example.com>"
    inner["Subject"] = "Gürültü"
    inner.set_content("Gece inşaat çalışması yapılıyor.")
    outer = EmailMessage()
    outer["From"] = "Ali <ali@example.com>"
    outer["Subject"] = "FW: Gürültü"
    outer["Message-ID"] = "<fw@x>"
    outer.add_attachment(inner)
    parsed = parse_mail(outer.as_bytes())
    assert parsed.payload["text"] == "Gece inşaat çalışması yapılıyor."
    assert parsed.payload["forwarded"]["subject"] == "Gürültü"


def test_html_lists_tables_and_entities() -> None:
    html = "<ul><li>bir</li><li>iki &amp; üç</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
    assert html_to_text(html) == "- bir\n- iki & üç\n\na b"


# -- replies to a case, bilgi edinme, e-signature ---------------------------------------------


def test_a_reply_to_our_case_mail_is_linked_to_the_case() -> None:
    raw = alternative_mail(
        "r1@x", "Teşekkürler, hâlâ bekliyorum.", In_Reply_To=f"<case-{CASE}@alo153.adana.bel.tr>"
    )
    assert parse_mail(raw).payload["reply_to_case"] == CASE


def test_a_tracking_number_in_the_subject_links_but_a_wrong_check_char_does_not() -> None:
    good = alternative_mail("r2@x", "Durum nedir?", subject=f"Başvuru {CASE.lower()}")
    assert parse_mail(good).payload["reply_to_case"] == CASE
    wrong = CASE[:-1] + ("0" if CASE[-1] != "0" else "1")
    bad = alternative_mail("r3@x", f"Numaram {wrong}")
    assert parse_mail(bad).payload["reply_to_case"] is None


def test_a_bilgi_edinme_application_carries_its_check() -> None:
    text = (
        "4982 sayılı Bilgi Edinme Kanunu uyarınca asfalt ihalelerini talep ediyorum.\n\n"
        "Adı Soyadı: Ayşe Nur Kaya\nAdres: Kurtuluş Mah. 64011 Sok. No: 5 Seyhan/ADANA\n"
        "T.C. Kimlik No: 12345678950\n"
    )
    application = parse_mail(alternative_mail("be1@x", text)).payload["bilgi_edinme"]
    assert application["applicant"] == "gercek-kisi" and application["valid"] is True
    assert application["tc_kimlik_no"] == "12345678950" and application["surname"] == "Kaya"


def test_a_p7s_attachment_is_an_e_signature() -> None:
    msg = EmailMessage()
    msg["From"] = "Ali <ali@example.com>"
    msg["Subject"] = "Bilgi edinme başvurusu"
    msg["Message-ID"] = "<sig@x>"
    msg.set_content("Bilgi edinme başvurumdur.")
    msg.add_attachment(
        b"0\x82\x01", maintype="application", subtype="pkcs7-signature", filename="smime.p7s"
    )
    payload = parse_mail(msg.as_bytes()).payload
    assert payload["e_signature"] is True
    assert payload["bilgi_edinme"]["valid"] is True and payload["bilgi_edinme"]["e_signature"]


# -- the raw event: blob store, size limit ---------------------------------------------------


def test_mail_event_stores_attachments_and_skips_an_oversize_one(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path, max_bytes=1000)
    event = mail_event(inline_image_mail("ev@x"), received_at=RECEIVED, blobs=blobs)
    (ref,) = event.attachments
    assert blobs.get(ref) == PNG and ref.content_type == "image/png"
    assert event.payload["inline_images"] == [ref.sha256]
    big = mail_event(attachment_mail("big@x", PDF * 20), received_at=RECEIVED, blobs=blobs)
    assert (
        big.attachments == () and big.payload["skipped_attachments"][0]["filename"] == "dilekçe.pdf"
    )
    assert any("not stored" in note for note in big.payload["notes"])
    assert RawEvent.from_bytes(big.to_bytes()) == big


# -- the enmime corpus: every sample parses or is rejected with a reason, never raises -------


def _enmime_samples() -> list[Path]:
    return sorted([*ENMIME.glob("mail/*.raw"), *ENMIME.glob("low-quality/*.raw")])


@pytest.fixture(scope="module")
def enmime_dir() -> Path:
    if not ENMIME.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the enmime MIME corpus is missing at {ENMIME}")
        pytest.skip(f"the enmime MIME corpus is not at {ENMIME}")
    return ENMIME


@pytest.mark.parametrize("sample", _enmime_samples() or [ENMIME / "missing"], ids=lambda p: p.name)
def test_every_enmime_sample_parses_or_is_rejected_with_a_reason(
    enmime_dir: Path, sample: Path, tmp_path: Path
) -> None:
    raw = sample.read_bytes()
    try:
        parsed = parse_mail(raw)
    except MailRejected as exc:
        assert str(exc), "a rejection says why"
        return
    assert isinstance(parsed, ParsedMail) and parsed.provider_id
    json.dumps(parsed.payload)  # JSON-ready
    event = mail_event(raw, received_at=RECEIVED, blobs=BlobStore(tmp_path, 10_000_000))
    assert RawEvent.from_bytes(event.to_bytes()).provider_id == parsed.provider_id


def test_enmime_corpus_throughput(enmime_dir: Path) -> None:
    samples = [path.read_bytes() for path in _enmime_samples()]
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for raw in samples:
            with contextlib.suppress(MailRejected):
                parse_mail(raw)
    rate = rounds * len(samples) / (time.perf_counter() - started)
    print(f"\nenmime corpus: {len(samples)} samples, {rate:.0f} mails/s parsed")
    assert rate > 50
