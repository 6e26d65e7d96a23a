"""Charsets of citizens' mail: bodies and headers decoded whatever their labels claim.

Turkish mail arrives as UTF-8, windows-1254 or ISO-8859-9, often labelled wrongly (a
Western label on Turkish bytes, none at all, an unknown name) and with raw 8-bit bytes in
headers. Every function here returns text and never raises on bad input: the declared
charset is tried first, then UTF-8, then windows-1254 with replacement characters.
"""

from __future__ import annotations

import binascii
import codecs
import re

__all__ = ["clean_text", "codec_name", "decode_bytes", "decode_header_value", "from_8bit", "unfold"]

_LATIN = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"})
_TURKISH_IN_LATIN = re.compile("[ðþýÐÞÝ]")  # ğ ş ı Ğ Ş İ read with a Western code page
_REFUSED_CODECS = frozenset({"unicode_escape", "raw_unicode_escape", "idna", "punycode"})
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """No lone surrogates (they cannot be UTF-8 encoded) and no control characters."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)


def codec_name(name: str | None) -> str | None:
    """Python's name of a declared charset, or None when it is unknown or not a text codec."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    return None if codec in _REFUSED_CODECS else codec


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str]:
    """Text of ``data`` and the charset that worked: the declared one, then UTF-8, then
    windows-1254 (with replacement). A Western label on UTF-8 or Turkish bytes is corrected."""
    codec = codec_name(declared)
    if codec is not None:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            if codec not in _LATIN or data.isascii():
                return text, codec
            try:
                return data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                if _TURKISH_IN_LATIN.search(text):
                    return data.decode("cp1254", "replace"), "cp1254"
                return text, codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1254", "replace"), "cp1254"


def unfold(value: str) -> str:
    """A header value on one line (RFC 5322 folding undone)."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", " ")


def from_8bit(value: str) -> str:
    """A header value with raw 8-bit bytes (surrogate-escaped by the parser) decoded."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    raw = value.encode("ascii", "surrogateescape")
    return decode_bytes(raw, None)[0]


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding.lower() == "q":
        return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
    return binascii.a2b_base64(text.encode("ascii", "replace") + b"===")


def _decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded; adjacent words of one charset are joined as bytes
    first, so a character split across two words survives."""
    out: list[str] = []
    run: list[tuple[str, bytes]] = []  # (charset, bytes) of the current run of words
    pos = 0

    def flush() -> None:
        while run:
            charset, data = run.pop(0)
            while run and run[0][0] == charset:
                data += run.pop(0)[1]
            out.append(decode_bytes(data, charset)[0])

    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        if gap.strip() or not run:
            flush()
            out.append(gap)
        charset = match.group(1).split("*", 1)[0]
        try:
            run.append((charset, _word_bytes(match.group(2), match.group(3))))
        except (binascii.Error, ValueError):
            flush()
            out.append(match.group(0))
        pos = match.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


def decode_header_value(value: str | None) -> str | None:
    """A raw header value as text: unfolded, 8-bit bytes and RFC 2047 words decoded."""
    if value is None:
        return None
    text = from_8bit(unfold(str(value)))
    if "=?" in text:
        text = _decode_words(text)
    return clean_text(text).strip()
