"""Text signatures of the clustering step: datasketch's MinHash values, computed per batch."""

from __future__ import annotations

import random

import pytest
from datasketch import MinHash

from streams.cluster.features import shingles, text_signatures, text_tokens
from streams.text import turkish_casefold

TEXTS = [
    "Reşatbey 62012 sokakta su borusu patlamış sular akıyo",
    "Sayın yetkili, Reşatbey Mahallesi 62012 Sokak'ta su borusu patladı, sular akıyor.",
    "ÇUKUROVA İSTASYON CADDESİNDE ÇÖP KONTEYNERI TAŞIYOR ŞİKAYET EDİYORUM",
    "cukurova istasyon caddesinde cop konteyneri tasiyor",
    "ok",
    "",
]


def _datasketch(items: set[str], num_perm: int) -> bytes:
    """The signature as datasketch 2 computes it (affine32, seed 153), cut to 16 bits."""
    sketch = MinHash(num_perm=num_perm, seed=153, scheme="affine32")
    sketch.update_batch([item.encode("utf-8") for item in items])
    return sketch.hashvalues.astype("<u2").tobytes()


def _sets() -> list[set[str]]:
    rng = random.Random(153)
    words = [w for t in TEXTS for w in text_tokens(turkish_casefold(t))] + ["ğüşıöç", "x" * 60]
    found = [shingles(text_tokens(turkish_casefold(t))) for t in TEXTS]
    for size in (1, 2, 3, 14, 40, 200):
        found.append({f"{rng.choice(words)} {rng.choice(words)}{i}" for i in range(size)})
    return found


@pytest.mark.parametrize("num_perm", [16, 64, 256])
def test_signatures_are_datasketchs_minhash(num_perm: int) -> None:
    # Signatures are persisted in the window table: a change of scheme would make every
    # report already in a window look unlike every new one.
    sets = _sets()
    for items, signature in zip(sets, text_signatures(sets, num_perm), strict=True):
        if not items:
            assert signature == b""
        else:
            assert signature == _datasketch(items, num_perm)
            assert len(signature) == 2 * num_perm


def test_a_set_gets_the_same_signature_alone_or_in_any_batch() -> None:
    sets = _sets()
    batch = text_signatures(sets, 64)
    assert [text_signatures([s], 64)[0] for s in sets] == batch
    shuffled = list(reversed(sets))
    assert text_signatures(shuffled, 64) == list(reversed(batch))


def test_a_batch_of_texts_without_words_gives_empty_signatures() -> None:
    assert text_signatures([set(), set()], 64) == [b"", b""]
    assert text_signatures([], 64) == []
