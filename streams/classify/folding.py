"""Text clean-up and folding: what the classifier's rules and model read of a message.

:func:`clean_text` keeps the citizen's own words (quoted replies, signatures, "sent from my
phone" lines, URLs, mentions, emoji and personal data removed); :func:`fold_text` turns them
into Turkish-casefolded ASCII words separated by single spaces, the form every phrase of
``taxonomy.toml`` is written in and the model was trained on.

Runs once per message on the worker's hot path, so each substitution is skipped when a
character or substring that all of its matches contain is absent (same result, cheaper).
"""

from __future__ import annotations

import re

from streams.pii import mask_personal_data
from streams.text import collapse_whitespace, fold_ascii, turkish_casefold

__all__ = ["clean_text", "fold_text"]

_QUOTE_START = re.compile(
    r"^(?:-{2,}\s*(?:original message|orijinal mesaj|iletilen mesaj|forwarded message)"
    r"|on .{4,200} wrote:|.{4,200} tarihinde .{0,200}yazd[ıi]:|(?:from|kimden): .+)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_SENT_FROM = re.compile(
    r"^(?:sent from my .*|.*(?:iphone|android|ipad)['’]?(?:umdan|[ıi]mdan|dan) g[öo]nderildi.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_LINE = re.compile(r"^\s*>.*$", re.MULTILINE)
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|ly|gov|tr|co)(?:/\S*)?", re.I)
_MENTION = re.compile(r"(?<![\w.])@\w+")
_MASKED = re.compile(r"(?:\S*\*\S*\s*)+(?:\d{1,2}\b)?")  # incl. a phone's kept digits
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d\u20e3]+"
)
# Substrings every match of the pattern above contains (same flags): without one, the
# substitution is skipped; cheaper than letting the pattern scan every line or word.
_SENT_FROM_HINT = re.compile(r"sent from my|g[öo]nderildi", re.IGNORECASE)
_URL_HINT = re.compile(r"https?://|www\.|\.(?:com|net|org|ly|gov|tr|co)", re.I)
_WORD = re.compile(r"[a-z0-9]+")


def clean_text(text: str) -> str:
    """The citizen's own words: quotes, signature, URLs, mentions, emoji, personal data removed."""
    return collapse_whitespace(_remove_noise(text))


def _remove_noise(text: str) -> str:
    """:func:`clean_text` before whitespace is collapsed. Each guard (a character or a hint
    pattern) only skips a substitution that could not have matched."""
    quote = _QUOTE_START.search(text)
    if quote and quote.start() > 0:
        text = text[: quote.start()]
    signature = _SIGNATURE.search(text) if "--" in text else None
    if signature and signature.start() > 0:
        text = text[: signature.start()]
    if ">" in text:
        text = _QUOTED_LINE.sub(" ", text)
    if _SENT_FROM_HINT.search(text):
        text = _SENT_FROM.sub(" ", text)
    text = mask_personal_data(text)
    if "*" in text:
        text = _MASKED.sub(" ", text)
    if _URL_HINT.search(text):
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    return _EMOJI.sub(" ", text.replace("#", " "))


def fold_text(text: str) -> str:
    """Cleaned, Turkish-casefolded, ASCII-folded words separated by single spaces.

    Apostrophes split a suffix off (``Reşatbey'de`` → ``resatbey de``), so a place name
    matches the same way whether the citizen wrote the apostrophe or not: everything but
    ``a-z0-9`` (apostrophes, punctuation, whitespace, other letters) separates words.
    """
    return " ".join(_WORD.findall(fold_ascii(turkish_casefold(_remove_noise(text)))))
