"""Right-to-information applications (Law 4982) by e-mail: recognise them, check their form.

An e-mail application is processed only when it names its applicant: a natural person gives
name, surname, a residence or work address and a T.C. kimlik no with valid check digits, or
signs electronically; a legal person gives its title (unvan), its address and the details of
its signatory. Invalid ones are answered with what is missing, so the check returns the
missing items as codes (``ad``, ``soyad``, ``adres``, ``tc-kimlik-no``, ``unvan``,
``imza-yetkilisi``). Labelled fields ("Adı Soyadı:", "Adres:", "T.C. Kimlik No:", "Unvan:")
are read first; free text (a valid 11-digit number, an address-looking line, the name under
the closing) is the fallback. Pure functions: the desk still reads every application.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from streams.pii import is_valid_tc_kimlik_no
from streams.text import fold_ascii, turkish_casefold

__all__ = ["Application", "check_application", "is_application"]

Applicant = Literal["gercek-kisi", "tuzel-kisi"]

_MENTION = re.compile(
    r"bilgi\s*edinme|(?<![\d.])4982(?!\d)\s*(?:sayili|s\.|(?:no\.?\s*lu|numarali)\s*(?:kanun|yasa))"
    r"|(?:kanun|yasa)\D{0,20}(?<!\d)4982(?!\d)"
)
_LABEL = re.compile(r"^\s*[-*•]?\s*(?P<label>[a-z .()/-]{2,40}?)\s*[:：]\s*(?P<value>.*)$")
_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "full_name",
        re.compile(
            r"adi?\s*[-/ ]?\s*soyadi?|adiniz\s*soyadiniz|isim\s*[-/ ]?\s*soyisim"
            r"|ad\s*ve\s*soyadi?|basvuru\s*sahibi(?:nin)?(?:\s*adi\s*soyadi)?|basvuran"
        ),
    ),
    ("surname", re.compile(r"soyadi?|soyadiniz|soyisim|soyisminiz")),
    ("name", re.compile(r"adi?|adiniz|isim|isminiz|isim\s*\(.*\)")),
    (
        "address",
        re.compile(
            r"(?:(?:ikamet(?:gah)?|yerlesim\s*yeri|is|ev|yazisma|tebligat|iletisim|acik)\s*)?"
            r"adres(?:i|iniz)?"
        ),
    ),
    (
        "tc",
        re.compile(
            r"t\.?\s*c\.?(?:\s*kimlik)?(?:\s*(?:no|numarasi|numaraniz))?\.?|tckn|tckno"
            r"|kimlik\s*(?:no|numarasi|numaraniz)\.?"
        ),
    ),
    (
        "title",
        re.compile(r"(?:sirket|firma|kurum|kurulus|tuzel\s*kisi(?:nin)?)?\s*(?:unvani?|adi)"),
    ),
    (
        "signatory",
        re.compile(
            r"imza\s*yetkilisi|yetkili(?:\s*kisi)?(?:\s*adi\s*soyadi)?|temsilci|imza\s*sahibi"
        ),
    ),
)
_LEGAL_SUFFIX = re.compile(
    r"(?:\ba\.?\s?s\.?|\banonim\s+sirketi|\bltd\.?\s*sti\.?|\blimited\s+sirketi|\bdernegi"
    r"|\bvakfi|\bkooperatifi)\s*[.,]?$"
)
_ON_BEHALF = re.compile(
    r"^(?P<title>.{3,100}?(?:a\.?\s?s\.?|sti\.?|dernegi|vakfi|kooperatifi))\s+adina\b"
)
_ADDRESS_WORD = re.compile(
    r"\b(?:mah(?:allesi|\.)?|mh\.|cad(?:desi|\.)?|cd\.|sok(?:ak|agi|\.)?|sk\.|bulvari|blv\.|bul\."
    r"|apt\.?|apartmani|sitesi|koyu)(?=\W|$)"
)
_ADDRESS_DETAIL = re.compile(
    r"\bno\s*[:.]?\s*\d|\d+\s*/\s*\d+|\bdaire\b|\bkat\b|\badana\b|\b01\d{3}\b"
    r"|\b(?:seyhan|yuregir|cukurova|saricam|ceyhan|kozan|imamoglu|karatas|karaisali|pozanti"
    r"|aladag|feke|saimbeyli|tufanbeyli|yumurtalik)\b"
)
_NAME_WORD = r"[A-ZÇĞİÖŞÜ][a-zçğıöşüâîû']+|[A-ZÇĞİÖŞÜ]{2,}"
_NAME = re.compile(rf"^(?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{1,3}}$")
_FREE_NAME = re.compile(
    rf"\b(?:[Bb]en|[Aa]dım|[İi]smim)\s+((?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{1,3}})"
)
_JOB_WORDS = re.compile(
    r"\b(?:mudur\w*|baskan\w*|yonetici\w*|sorumlu\w*|koordinator\w*|uzman\w*|sekreter\w*"
    r"|yetkili\w*|temsilci\w*|sef\w*|direktor\w*|manager|director|genel|avukat\w*|muhasebe\w*)\b"
)
_CLOSING = re.compile(r"^(?:saygilarimla|saygilarimizla|saygilar|iyi calismalar|iyi gunler)\b")
_DIGITS11 = re.compile(r"(?<!\d)([1-9]\d{10})(?!\d)")


def _fold(text: str) -> str:
    return fold_ascii(turkish_casefold(text))


def is_application(subject: str | None, text: str) -> bool:
    """Whether a mail is a right-to-information application: it says "bilgi edinme" or
    cites Law 4982 ("4982 sayılı …", "Kanun No: 4982") in its subject or body."""
    return bool(_MENTION.search(_fold(f"{subject or ''}\n{text}")))


@dataclass(frozen=True)
class Application:
    """The outcome of the form check, and the applicant's details as found in the mail."""

    applicant: Applicant
    valid: bool
    missing: tuple[str, ...]
    e_signature: bool
    name: str | None = None
    surname: str | None = None
    address: str | None = None
    tc_kimlik_no: str | None = None
    title: str | None = None
    signatory: str | None = None
    #: Why a given value was not accepted (for the desk), e.g. a kimlik no with wrong digits.
    notes: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        """A JSON-ready dict for the raw event's payload."""
        data = asdict(self)
        data["missing"] = list(self.missing)
        data["notes"] = list(self.notes)
        return data


def _clean(value: str) -> str | None:
    value = value.strip().strip(" .,;:-–*").strip()
    return value if value and _fold(value) not in ("yok", "-", "belirtilmedi") else None


def _labelled(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Labelled fields (first occurrence of each) and the raw values of any kimlik-no label."""
    found: dict[str, str] = {}
    tc_values: list[str] = []
    for i, line in enumerate(lines):
        match = _LABEL.match(_fold(line))
        if not match:
            continue
        label = match.group("label").strip()
        kind = next((k for k, pattern in _LABELS if pattern.fullmatch(label)), None)
        if kind is None:
            continue
        value = line.split(":", 1)[1] if ":" in line else line.split("：", 1)[-1]
        if kind == "address":  # an address may go on over the next lines
            more = []
            for nxt in lines[i + 1 : i + 4]:
                folded = _fold(nxt.strip())
                if not folded or _LABEL.match(folded) or _CLOSING.match(folded) or len(nxt) > 120:
                    break
                more.append(nxt.strip())
            value = " ".join([value.strip(), *more])
        if kind == "tc":
            tc_values.append(value)
        cleaned = _clean(value)
        if cleaned and kind not in found:
            found[kind] = cleaned
    return found, tc_values


def _split_name(full: str) -> tuple[str | None, str | None]:
    words = full.split()
    if len(words) >= 2:
        return " ".join(words[:-1]), words[-1]
    return (words[0], None) if words else (None, None)


def _name_like(line: str) -> bool:
    line = line.strip().strip(",.")
    return bool(_NAME.match(line)) and not _JOB_WORDS.search(_fold(line)) and len(line) <= 60


def _closing_name(lines: list[str]) -> str | None:
    """A name-looking line right under the closing formula, or the closing's own name."""
    for i, line in enumerate(lines):
        if not _CLOSING.match(_fold(line.strip())):
            continue
        tail = line.split(",", 1)[1].strip() if "," in line else ""
        if tail and _name_like(tail):
            return tail.strip(",. ")
        for nxt in lines[i + 1 : i + 4]:
            if _name_like(nxt):
                return nxt.strip().strip(",.")
    return None


def _free_address(lines: list[str]) -> str | None:
    for line in lines:
        folded = _fold(line)
        if _ADDRESS_WORD.search(folded) and _ADDRESS_DETAIL.search(folded) and len(line) <= 200:
            return line.strip()
    return None


def _legal_title(lines: list[str], labelled: dict[str, str]) -> tuple[str | None, int | None]:
    """The legal person's title and its line, when the mail is sent on behalf of one."""
    if "title" in labelled and _LEGAL_SUFFIX.search(_fold(labelled["title"])):
        return labelled["title"], None
    content = [i for i, line in enumerate(lines) if line.strip()]
    for i in content:
        if match := _ON_BEHALF.match(_fold(lines[i].strip())):
            return lines[i].strip()[: len(match.group("title"))], i
    for i in content[-12:]:  # the signature block, where a company signs
        line = lines[i].strip()
        if len(line) <= 100 and _LEGAL_SUFFIX.search(_fold(line)) and ":" not in line:
            return line.rstrip(","), i
    return None, None


def _signatory(lines: list[str], near: int | None, title: str | None) -> str | None:
    if near is not None:
        for k in (near - 1, near - 2, near + 1, near + 2, near - 3):
            if 0 <= k < len(lines) and lines[k].strip() != title and _name_like(lines[k]):
                return lines[k].strip().strip(",.")
    return _closing_name(lines)


def check_application(
    text: str, *, e_signature: bool = False, sender_name: str | None = None
) -> Application:
    """Check an application's form (``text``: the body with its signature, quotes removed).

    ``e_signature``: the mail carries an electronic signature (``.p7s``/``.imz``, S/MIME);
    it stands in for the identity details. ``sender_name``: the From display name, used for
    the name only when the text gives none.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    labelled, tc_values = _labelled(lines)
    title, title_line = _legal_title(lines, labelled)
    address = labelled.get("address") or _free_address(lines)
    sender = sender_name.strip() if sender_name and _name_like(sender_name) else None
    if title is not None:
        signatory = labelled.get("signatory") or _signatory(lines, title_line, title) or sender
        required = {"unvan": title, "adres": address, "imza-yetkilisi": signatory}
        details: dict[str, Any] = {"address": address, "title": title, "signatory": signatory}
        return _verdict("tuzel-kisi", required, e_signature, details)
    name, surname = labelled.get("name"), labelled.get("surname")
    full = labelled.get("full_name")
    if full is None and name is None:
        free = _FREE_NAME.search(text)
        full = free.group(1) if free else (_closing_name(lines) or sender)
    if full is not None:
        first, last = _split_name(full)
        name, surname = name or first, surname or last
    tc, notes = _kimlik_no(text, tc_values)
    required = {"ad": name, "soyad": surname, "adres": address, "tc-kimlik-no": tc}
    details = {"name": name, "surname": surname, "address": address, "tc_kimlik_no": tc}
    return _verdict("gercek-kisi", required, e_signature, details, notes)


def _kimlik_no(text: str, labelled: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """A valid T.C. kimlik no: a labelled one first, else any valid 11-digit number."""
    notes: list[str] = []
    for raw in labelled:
        digits = re.sub(r"\D", "", raw)
        if is_valid_tc_kimlik_no(digits):
            return digits, ()
        if digits:
            notes.append("T.C. kimlik no doğrulanamadı (11 hane ve kontrol haneleri)")
    found = next((d for d in _DIGITS11.findall(text) if is_valid_tc_kimlik_no(d)), None)
    return found, tuple(dict.fromkeys(notes))


def _verdict(
    applicant: Applicant,
    required: dict[str, str | None],
    e_signature: bool,
    details: dict[str, Any],
    notes: tuple[str, ...] = (),
) -> Application:
    """Valid when every required item is there, or the mail is e-signed."""
    missing = () if e_signature else tuple(code for code, value in required.items() if not value)
    return Application(applicant, not missing, missing, e_signature, notes=notes, **details)
