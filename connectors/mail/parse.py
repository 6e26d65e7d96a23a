"""One mail's bytes → the raw event's payload and its attachments (pure; no I/O).

Citizens' mail is whatever their client produced: RFC 2047 headers and raw 8-bit ones,
windows-1254 / iso-8859-9 / utf-8 bodies with a wrong or unknown charset label, HTML-only
mail, inline photos, broken MIME. The standard library's ``email`` package parses it
(``policy.default``; ``compat32`` when the modern parser fails) and every step degrades
instead of failing: headers and bodies are decoded with a charset fallback chain, problems
are noted in the payload. Only bytes that are not a mail at all raise ``MailRejected``,
which the connector sends to the dead-letter topic with the bytes kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from connectors.mail.bilgi_edinme import check_application, is_application
from connectors.mail.charset import (
    clean_text,
    codec_name,
    decode_bytes,
    decode_header_value,
)
from connectors.mail.headers import (
    MAX_ADDRESSES,
    address,
    addresses,
    find_case_reference,
    first,
    message_ids,
    parse_date,
    provider_id,
    raw_headers,
)
from connectors.mail.text import Trimmed, html_to_text, trim_reply

__all__ = [
    "MailAttachment",
    "MailRejected",
    "ParsedMail",
    "parse_mail",
]

#: Longest body text kept in the payload (a Kafka record stays well under 1 MB).
MAX_TEXT_CHARS = 100_000
#: Longest HTML body turned into text (html.parser reads about 2 MB a second).
MAX_HTML_CHARS = 1_000_000
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pkcs7-mime"}
)
_SIGNATURE_SUFFIXES = (".p7s", ".imz", ".p7m")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]{2,40})", re.IGNORECASE)


class MailRejected(ValueError):
    """The bytes are not a mail the pipeline can use; the reason says why."""


@dataclass(frozen=True)
class MailAttachment:
    """One attached (or inline) file, still as bytes: the connector stores it."""

    data: bytes
    filename: str | None
    content_type: str
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class ParsedMail:
    """What the connector publishes: the event key, the payload and the files."""

    provider_id: str
    payload: dict[str, Any]
    attachments: tuple[MailAttachment, ...] = ()


@dataclass
class _Body:
    """What the walk over the MIME tree collects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[MailAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    e_signature: bool = False
    #: Messages attached whole (Outlook's "forward as attachment").
    inner: list[bytes] = field(default_factory=list)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:
        return None
    if isinstance(name, tuple):  # an RFC 2231 value compat32 did not decode
        name = name[2]
    return decode_header_value(str(name)) if name else None


def _text_of(part: Message, body: _Body) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    declared = part.get_content_charset()
    if declared is None and part.get_content_type() == "text/html":
        meta = _META_CHARSET.search(data[:4096])
        declared = meta.group(1).decode("ascii") if meta else None
    text, used = decode_bytes(data, declared)
    if declared and codec_name(declared) != used:
        body.notes.append(f"charset {declared!r} of a text part did not fit; read as {used}")
    return clean_text(text)


def _leaf(part: Message, body: _Body, text_wanted: bool) -> None:
    declared_type = _MEDIA_TYPE.match(part.get_content_type())
    ctype = declared_type.group(0) if declared_type else "application/octet-stream"
    disposition = (part.get_content_disposition() or "").lower()
    name = _filename(part)
    if (name and name.lower().endswith(_SIGNATURE_SUFFIXES)) or ctype in _SIGNATURE_TYPES:
        body.e_signature = True
    if ctype.startswith("multipart/"):  # a multipart without a usable boundary
        body.notes.append(f"{ctype} without a boundary was read as plain text")
        if text_wanted:
            body.plain.append(_text_of(part, body))
        return
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not name:
        if text_wanted:
            (body.plain if ctype == "text/plain" else body.html).append(_text_of(part, body))
        return
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data:
        return
    content_id = part.get("Content-ID")
    ids = message_ids(str(content_id)) if content_id else []
    inline = disposition == "inline" or (bool(ids) and disposition != "attachment")
    body.files.append(MailAttachment(data, name, ctype, inline, ids[0] if ids else None))


def _alternative_pick(children: list[Message]) -> Message | None:
    """The part of a multipart/alternative to read: plain text first, then HTML."""
    for wanted in ("text/plain", "text/html"):
        for child in children:
            data = child.get_payload(decode=True)
            if child.get_content_type() == wanted and isinstance(data, bytes) and data.strip():
                return child
    multiparts = [c for c in children if c.is_multipart()]
    return multiparts[-1] if multiparts else (children[-1] if children else None)


def _walk(part: Message, body: _Body, text_wanted: bool = True, depth: int = 0) -> None:
    if depth > 30:
        body.notes.append("MIME nesting deeper than 30 levels was not read")
        return
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        message = inner[0] if isinstance(inner, list) and inner else None
        try:
            data = message.as_bytes(policy=policy.compat32) if isinstance(message, Message) else b""
        except Exception as exc:  # a generator failure on a broken inner message
            body.notes.append(f"an attached message could not be kept: {type(exc).__name__}")
            return
        if data:
            body.files.append(MailAttachment(data, _filename(part) or "ileti.eml", ctype))
            body.inner.append(data)
        return
    if not part.is_multipart():
        _leaf(part, body, text_wanted)
        return
    children = [c for c in part.get_payload() if isinstance(c, Message)]
    if ctype == "multipart/signed":
        protocol = str(part.get_param("protocol") or "").lower()
        body.e_signature = body.e_signature or "pkcs7" in protocol
    pick = _alternative_pick(children) if ctype == "multipart/alternative" else None
    for child in children:
        wanted = text_wanted and (pick is None or child is pick)
        _walk(child, body, wanted, depth + 1)


def _defects(msg: Message) -> list[str]:
    names: dict[str, None] = {}
    for part in msg.walk():
        for defect in getattr(part, "defects", []):
            names[type(defect).__name__] = None
    return list(names)


def _body_text(body: _Body) -> str:
    """The plain-text parts, or when there are none the HTML parts as text."""
    full = "\n\n".join(t for t in body.plain if t.strip())
    return full or "\n\n".join(html_to_text(h[:MAX_HTML_CHARS]) for h in body.html if h.strip())


def _attached_mail(data: bytes) -> tuple[str, dict[str, str]] | None:
    """Text and header fields of a mail attached whole (one level deep, never recursive)."""
    try:
        msg, body = _read(data, policy.compat32)
        headers = raw_headers(msg)
        fields = {
            key: value
            for key in ("from", "date", "subject")
            if (value := decode_header_value(first(headers, key)))
        }
        text = trim_reply(_body_text(body)[:MAX_TEXT_CHARS]).text
    except Exception:
        return None
    return (text, fields) if text else None


def _read(raw: bytes, mode: policy.Policy) -> tuple[Message, _Body]:
    msg = BytesParser(policy=mode).parsebytes(raw)
    body = _Body()
    _walk(msg, body)
    return msg, body


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail; ``MailRejected`` when the bytes are not a usable mail.

    The payload holds the sender, subject, dates, ids, the citizen's text (quotes and
    signature cut), the signature, forwarding and reply information, the bilgi edinme check
    and notes on anything that had to be repaired.
    """
    if not raw.strip():
        raise MailRejected("empty message")
    source = raw.lstrip(b" \t")  # a first header line indented by mistake
    try:
        msg, body = _read(source, policy.default)
    except Exception:
        try:
            msg, body = _read(source, policy.compat32)
        except Exception as exc:
            raise MailRejected(f"MIME parser failed: {type(exc).__name__}: {exc}") from exc
        body.notes.append("modern e-mail parser failed; read with the compat32 parser")
    try:
        return _payload(raw, msg, body)
    except MailRejected:
        raise
    except Exception as exc:
        raise MailRejected(f"mail could not be read: {type(exc).__name__}: {exc}") from exc


def _payload(raw: bytes, msg: Message, body: _Body) -> ParsedMail:
    headers = raw_headers(msg)
    if not headers:
        raise MailRejected("no header fields: the bytes are not an RFC 5322 message")
    subject = decode_header_value(first(headers, "subject")) or None
    sender = address(first(headers, "from"))
    html_only = not any(t.strip() for t in body.plain) and any(h.strip() for h in body.html)
    full = _body_text(body)
    if not (sender or subject or full.strip() or body.files):
        raise MailRejected("no sender, subject, text or attachment")
    if len(full) > MAX_TEXT_CHARS:
        body.notes.append(f"body cut to the first {MAX_TEXT_CHARS} characters")
        full = full[:MAX_TEXT_CHARS]
    trimmed = trim_reply(full, subject)
    if not trimmed.text and body.inner and (attached := _attached_mail(body.inner[0])):
        body.notes.append("the text is that of a mail forwarded as an attachment")
        trimmed = Trimmed(attached[0], None, False, attached[1])
    message_id = first(headers, "message-id")
    own_ids = message_ids(message_id)
    in_reply_to = message_ids(first(headers, "in-reply-to"))
    references = message_ids(first(headers, "references"))[-MAX_ADDRESSES:]
    own_words = "\n".join(filter(None, [trimmed.text, trimmed.signature]))
    application = None
    if is_application(subject, own_words):
        application = check_application(
            own_words,
            e_signature=body.e_signature,
            sender_name=sender["name"] if sender else None,
        ).to_payload()
    defects = _defects(msg)
    if defects:
        body.notes.append("MIME defects: " + ", ".join(defects))
    payload: dict[str, Any] = {
        "message_id": own_ids[0] if own_ids else None,
        "subject": subject,
        "from": sender,
        "reply_to": address(first(headers, "reply-to")),
        "to": addresses(headers.get("to", [])),
        "cc": addresses(headers.get("cc", [])),
        "date": parse_date(first(headers, "date")),
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references": references,
        "text": trimmed.text,
        "signature": trimmed.signature,
        "quoted": trimmed.quoted,
        "forwarded": trimmed.forwarded,
        "html_only": html_only,
        "e_signature": body.e_signature,
        "reply_to_case": find_case_reference(in_reply_to, references, subject, full),
        "bilgi_edinme": application,
        "notes": list(dict.fromkeys(body.notes)),
    }
    return ParsedMail(provider_id(raw, message_id), payload, tuple(body.files))
