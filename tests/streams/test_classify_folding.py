"""Folding with guarded substitutions: the same text as applying every substitution."""

import random
import re

from streams.classify import folding
from streams.classify.folding import clean_text, fold_text
from streams.pii import mask_personal_data
from streams.text import collapse_whitespace, fold_ascii, turkish_casefold

_APOSTROPHE = re.compile(r"['’`´]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _clean_reference(text: str) -> str:
    """clean_text without guards: every pattern applied, whitespace collapsed."""
    quote = folding._QUOTE_START.search(text)
    if quote and quote.start() > 0:
        text = text[: quote.start()]
    signature = folding._SIGNATURE.search(text)
    if signature and signature.start() > 0:
        text = text[: signature.start()]
    text = folding._SENT_FROM.sub(" ", folding._QUOTED_LINE.sub(" ", text))
    text = folding._MASKED.sub(" ", mask_personal_data(text))
    text = folding._MENTION.sub(" ", folding._URL.sub(" ", text))
    return collapse_whitespace(folding._EMOJI.sub(" ", text.replace("#", " ")))


def _fold_reference(text: str) -> str:
    """fold_text as it was: apostrophes to spaces, then every other non-word run."""
    folded = fold_ascii(turkish_casefold(_clean_reference(text)))
    return _NOT_WORD.sub(" ", _APOSTROPHE.sub(" ", folded)).strip()


FRAGMENTS = [
    "Çöp toplanmıyor", "SOKAK LAMBASI YANMIYOR", "Reşatbey'de su yok", "İŞKEMBECİ'nin önü",
    "ığdır ıslak", "https://x.com/a?b=1", "www.adana.bel.tr/sikayet", "belediye.gov.tr",
    "site.COM", "adres.com.tr/x", "foo.comma", "@belediye", "ali@example.com", "a.b@x.org",
    "0532 123 45 67", "+90 (322) 455 35 00", "TR12 0006 4000 0011 2345 6789 01",
    "10000000146", "12345678901", "***", "a*b", "5**", "#çöp", "😡🔥", "→", "--", "-- ",
    "\n-- \n", "\n> alıntı satırı\n", ">", "iPhone'umdan gönderildi", "Sent from my iPhone",
    "SENT FROM MY ANDROID", "Android cihazımdan gönderildi", "gonderildi", "\n", "\t", "  ",
    "\u00a0", "On Mon, Ali wrote:", "\n12 Haz 2025 tarihinde Ali yazdı:\n", "Kimden: x",
    "-----Original Message-----", "yangın var!!!", "3.", "No:2", "Mah.", "’", "`", "´",
    "e\u0301", "I", "İ", "ı", "Â", "a_b", "x-y", "é",
]  # fmt: skip


def _random_texts(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = rng.choices(FRAGMENTS, k=rng.randint(1, 9))
        texts.append(rng.choice(["", " ", "\n"]).join(parts))
    return texts


def test_guarded_folding_equals_applying_every_substitution() -> None:
    for text in _random_texts(3000):
        assert clean_text(text) == _clean_reference(text), repr(text)
        assert fold_text(text) == _fold_reference(text), repr(text)


def test_each_guarded_substitution_still_applies() -> None:
    assert fold_text("Çöp var https://t.co/x bakın") == "cop var bakin"
    assert fold_text("çöp BELEDIYE.COM bakın") == "cop bakin"
    assert fold_text("@belediye çöp") == "cop"
    assert fold_text("çöp\niPhone'umdan gönderildi") == "cop"
    assert fold_text("çöp\nSent from my iPhone") == "cop"
    assert fold_text("çöp\n> eski mesaj") == "cop"
    assert fold_text("çöp\n-- \nAli Veli") == "cop"
    assert fold_text("çöp 0532 123 45 67") == "cop"
