"""A mail body as the citizen's own words: HTML turned into text, quotes and signatures cut.

Mail clients append the previous messages and a signature to every reply; classification,
clustering and the console want only what the citizen wrote this time. Nothing here is lost
for good: the connector keeps the signature in the payload and the raw mail stays on the
server. Everything is a pure function over ``str``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from streams.text import fold_ascii, turkish_casefold

__all__ = ["Trimmed", "html_to_text", "trim_reply"]

_SKIP_TAGS = frozenset({"script", "style", "title", "noscript", "template", "xml"})
_LINE_TAGS = frozenset({"br", "tr", "li", "dt", "dd", "hr"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "table", "ul", "ol", "pre", "section", "article", "header", "footer", "address"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "center", "form", "fieldset", "dl", "body"}
)
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "table"})
_QUOTE_OPEN, _QUOTE_CLOSE = "\ue000+", "\ue000-"  # private-use markers, never in real text
_SPACES = re.compile(r"[ \t\r\f\v\xa0\u200b]+")


class _TextParser(HTMLParser):
    """Collects the visible text; block tags become line breaks, blockquotes get markers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0

    def breaks(self, count: int) -> None:
        """End the current line, with ``count - 1`` blank lines after it at most."""
        tail = re.sub(r"[ \t\xa0]+", "", "".join(self.out[-6:]))
        have = len(tail) - len(tail.rstrip("\n"))
        self.out.append("\n" * max(count - have, 0))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "blockquote":
            self.out.append(f"\n{_QUOTE_OPEN}\n")
        elif tag == "li":
            self.breaks(1)
            self.out.append("- ")
        elif tag == "br":
            self.out.append("\n")
        elif tag in _LINE_TAGS:
            self.breaks(1)
        elif tag in _BLOCK_TAGS:
            self.breaks(2 if tag in _PARAGRAPHS else 1)
        elif tag in ("td", "th"):
            self.out.append(" ")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(self.skip - 1, 0)
        elif tag == "blockquote":
            self.out.append(f"\n{_QUOTE_CLOSE}\n")
        elif tag in _BLOCK_TAGS:
            self.breaks(2 if tag in _PARAGRAPHS else 1)
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of an HTML mail body, with line breaks where the blocks were.

    Scripts and styles are dropped; ``<blockquote>`` content comes out as ``> `` lines so that
    the quote trimming treats HTML and plain-text replies alike.
    """
    parser = _TextParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; this is only a last line of defence
        return _tidy(re.sub(r"<[^>]*>", " ", html))
    text = "".join(parser.out)
    if not text.strip() and parser.skip:  # an unclosed <style> swallowed everything
        text = re.sub(r"<[^>]*>", " ", html)
    return _tidy(text)


def _tidy(text: str) -> str:
    """Lines stripped, runs of blank lines collapsed to one, blockquote markers as ``> ``."""
    lines: list[str] = []
    depth = 0
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _SPACES.sub(" ", raw_line).strip()
        if line == _QUOTE_OPEN:
            depth += 1
            continue
        if line == _QUOTE_CLOSE:
            depth = max(depth - 1, 0)
            continue
        if line and depth:
            line = "> " * depth + line
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


@dataclass(frozen=True)
class Trimmed:
    """A body cut down to the citizen's own words, and what was cut."""

    text: str
    signature: str | None = None
    quoted: bool = False
    #: The forwarded message's header fields (``from``, ``date``, ``subject``, ``to``).
    forwarded: dict[str, str] | None = None


def _fold(line: str) -> str:
    return fold_ascii(turkish_casefold(line)).strip()


_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|iletilen ileti|iletilmis ileti|ileti iletildi)\s*-{2,}"
    r"|begin forwarded message:|iletilen ileti(?:nin baslangici)?:)$"
)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:original message|ozgun ileti|orijinal (?:mesaj|ileti)|asil ileti)\s*-{2,}$"
)
_ATTRIBUTION = re.compile(r"^(?:on\b.{0,300}\bwrote:|.{0,300}\btarihinde\b.{0,300}\byazdi:)$")
_HEADER_KEYS = {
    "from": "from",
    "kimden": "from",
    "gonderen": "from",
    "date": "date",
    "sent": "date",
    "tarih": "date",
    "gonderildi": "date",
    "gonderilme tarihi": "date",
    "subject": "subject",
    "konu": "subject",
    "to": "to",
    "kime": "to",
    "alici": "to",
    "cc": "cc",
    "bilgi": "cc",
}
_HEADER_LINE = re.compile(r"^\*?([a-z ]{2,20}?)\*?\s*:\s*(.*)$")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|ilt|iletilen|tr)\s*:", re.IGNORECASE)
_MOBILE = re.compile(
    r"^(?:sent from my .{1,40}|sent from (?:mail|outlook|yahoo mail) for .{1,30}"
    r"|.{0,40}(?:iphone|ipad|android|samsung|galaxy|huawei|xiaomi|mobil|telefon|outlook)"
    r".{0,40}(?:dan|den|tan|ten) gonderildi\.?"
    r"|(?:windows icin posta|yahoo mail|gmail|outlook) ile gonderildi\.?"
    r"|get outlook for (?:ios|android)|(?:ios|android) icin outlook.{0,20})$"
)
_UNDERLINE = re.compile(r"_{8,}|-{8,}")
_CLOSING = re.compile(
    r"^(?:saygilarimla|saygilarimizla|saygilar|saygi ile|saygiyla|iyi calismalar(?: dilerim)?"
    r"|iyi gunler(?: dilerim)?|esenlikler(?: dilerim)?|best regards|kind regards|regards)"
    r"\b[\s,.!]*.{0,60}$"
)
_SIGNATURE_MAX_LINES = 8
_SIGNATURE_LINE_CHARS = 80


def _header_field(line: str) -> tuple[str, str] | None:
    match = _HEADER_LINE.match(_fold(line))
    if not match or match.group(1).strip() not in _HEADER_KEYS:
        return None
    value = line.split(":", 1)[1].strip() if ":" in line else ""
    return _HEADER_KEYS[match.group(1).strip()], value.strip("* ")


def _header_block_at(lines: list[str], i: int) -> int:
    """How many lines from ``i`` form a quoted-mail header block (From:/Kimden: first)."""
    first = _header_field(lines[i])
    if first is None or first[0] != "from":
        return 0
    keys, n = {first[0]}, 1
    while i + n < len(lines) and n < 8 and (field := _header_field(lines[i + n])):
        keys.add(field[0])
        n += 1
    return n if len(keys) >= 2 else 0


def _is_attribution(lines: list[str], i: int) -> int:
    """How many lines (1–3) from ``i`` form an "On … wrote:" / "… tarihinde … yazdı:" line."""
    for span in (1, 2, 3):
        if i + span <= len(lines) and _ATTRIBUTION.match(_fold(" ".join(lines[i : i + span]))):
            return span
    return 0


def _cut_quotes(lines: list[str]) -> tuple[list[str], bool]:
    """Lines without the quoted previous messages; True when something was cut."""
    out: list[str] = []
    cut = False
    i = 0
    while i < len(lines):
        line = lines[i]
        folded = _fold(line)
        span = _is_attribution(lines, i)
        if span:
            j = i + span
            while j < len(lines) and (not lines[j].strip() or lines[j].lstrip().startswith(">")):
                j += 1
            rest = [x for x in lines[j:] if x.strip()]
            if j > i + span and rest and not any(x.strip() for x in out):
                i, cut = j, True  # bottom-posting: the quote is on top, the answer below it
                continue
            return out, True
        underline = bool(_UNDERLINE.fullmatch(folded))
        if _ORIGINAL.match(folded) or _header_block_at(lines, i):
            return out, True
        if underline and any(
            _header_block_at(lines, k) for k in range(i + 1, min(i + 3, len(lines)))
        ):
            return out, True
        if line.lstrip().startswith(">"):
            cut = True
        else:
            out.append(line)
        i += 1
    return out, cut


def _cut_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """(body lines, signature lines): a "-- " delimiter, mobile footers, a closing formula."""
    body = [line for line in lines if not _MOBILE.match(_fold(line))]
    removed = [line for line in lines if _MOBILE.match(_fold(line))]
    for i, line in enumerate(body):
        if line.rstrip() in ("--", "-- ") or line == "-- ":
            return body[:i], body[i + 1 :] + removed
    for i in range(len(body) - 1, -1, -1):
        if not _CLOSING.match(_fold(body[i])):
            continue
        after = [x for x in body[i + 1 :] if x.strip()]
        before = [x for x in body[:i] if x.strip()]
        short = all(len(x.strip()) <= _SIGNATURE_LINE_CHARS for x in after)
        if before and short and len(after) <= _SIGNATURE_MAX_LINES:
            return body[:i], body[i:] + removed
        break
    return body, removed


def _strip_blank(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def _trim_body(lines: list[str]) -> tuple[str, str, bool]:
    kept, quoted = _cut_quotes(lines)
    body, signature = _cut_signature(kept)
    return _strip_blank(body), _strip_blank(signature), quoted


def _forward_start(lines: list[str], subject: str | None) -> int | None:
    """Where a forwarded message begins (its marker line, or an Outlook header block)."""
    for i, line in enumerate(lines):
        if _FORWARD.match(_fold(line)):
            return i
    if subject and _FORWARD_SUBJECT.match(subject):  # Outlook forwards look like replies
        for i, line in enumerate(lines):
            if _ORIGINAL.match(_fold(line)):
                return i
            if _header_block_at(lines, i):
                above = [k for k in range(i) if lines[k].strip()]
                return above[-1] if above and _UNDERLINE.fullmatch(_fold(lines[above[-1]])) else i
    return None


def _forwarded_part(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The forwarded message's header fields and its body lines (marker lines dropped)."""
    rest = list(lines)
    while rest and (
        not rest[0].strip()
        or _FORWARD.match(_fold(rest[0]))
        or _ORIGINAL.match(_fold(rest[0]))
        or _UNDERLINE.fullmatch(_fold(rest[0]))
    ):
        rest = rest[1:]
    fields: dict[str, str] = {}
    while rest and (field := _header_field(rest[0])):
        fields.setdefault(field[0], field[1])
        rest = rest[1:]
    return fields, rest


def trim_reply(text: str, subject: str | None = None) -> Trimmed:
    """The citizen's own words of a mail body.

    Quoted previous messages (``> `` lines, "On … wrote:" / "… tarihinde … yazdı:"
    attributions, Outlook's "-----Original Message-----" / "-----Özgün İleti-----" and
    From:/Kimden: header blocks) are cut; so are signatures (a ``-- `` line, a closing such
    as "Saygılarımla" followed only by short lines, "iPhone'umdan gönderildi"). A forwarded
    mail keeps the forwarded content as the text, after the forwarder's own note, and its
    header fields are returned in ``forwarded``. When trimming would leave nothing, the
    whole body is kept.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _forward_start(lines, subject)
    if start is not None:
        note, note_signature, _ = _trim_body(lines[:start])
        fields, rest = _forwarded_part(lines[start:])
        body, signature, quoted = _trim_body(rest)
        combined = "\n\n".join(part for part in (note, body) if part)
        if combined:
            sig = "\n\n".join(s for s in (note_signature, signature) if s) or None
            return Trimmed(combined, sig, quoted, fields)
    body, signature, quoted = _trim_body(lines)
    if not body:
        return Trimmed(text.strip())
    return Trimmed(body, signature or None, quoted)
