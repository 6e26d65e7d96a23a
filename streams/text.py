"""Turkish text helpers: casefolding with Turkish rules and whitespace clean-up."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["collapse_whitespace", "fold_ascii", "turkish_casefold"]

_WS = re.compile(r"\s+")
# ç/c, ğ/g, ı/i, ö/o, ş/s, ü/u: for matching text typed without Turkish letters.
_ASCII_PAIRS = (
    ("ç", "c"),
    ("ğ", "g"),
    ("ı", "i"),
    ("ö", "o"),
    ("ş", "s"),
    ("ü", "u"),
    ("â", "a"),
    ("î", "i"),
    ("û", "u"),
)


def turkish_casefold(text: str) -> str:
    """Lower-case with Turkish rules: ``I`` → ``ı``, ``İ`` → ``i`` (Python maps both to ``i``)."""
    text = unicodedata.normalize("NFC", text)
    return text.replace("I", "ı").replace("İ", "i").lower()


def fold_ascii(folded: str) -> str:
    """Turkish-casefolded text with the Turkish letters replaced by their ASCII look-alikes."""
    for turkish, ascii_letter in _ASCII_PAIRS:
        folded = folded.replace(turkish, ascii_letter)
    return folded


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace (newlines included) as one space, ends trimmed."""
    return _WS.sub(" ", text).strip()
