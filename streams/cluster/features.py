"""What two reports are compared by: a text signature, citizen keys and a place (pure functions).

Text: Turkish is agglutinative and citizens type without Turkish letters, so the folded ASCII
text is cut into words, each word is stemmed to its first five letters (the "F5" stemmer that
works well for Turkish retrieval: ``patlamış``/``patladı`` → ``patla``, ``akıyo``/``akıyor`` →
``akiyo``), address words (``mahalle``, ``sokak`` …) and filler are dropped, and the word
2-shingles of what remains are summarised by a MinHash. The signature keeps the low 16 bits
of each of the 32-bit minima ("b-bit minwise hashing"): two different minima agree by chance
with probability 2⁻¹⁶, so the Jaccard estimate is unchanged for this use and the signature is
half the size.

The MinHash is datasketch 2's ``affine32`` scheme (SHA-1's first four bytes of a shingle,
the MurmurHash3 finalizer, then ``a·h + b mod 2³²`` per permutation, drawn from a seeded
``RandomState``), computed here for a whole batch at once. Signatures are persisted in the
window table, so they must not change with a library upgrade: the scheme is this module's,
and a test holds it to datasketch's values.

Citizens: a salted HMAC-SHA-256 of each normalised identifier (phone in E.164 digits,
e-mail, handle, T.C. kimlik no), cut to 64 bits. The raw value is never kept (KVKK).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from schemas.common import CitizenContact
from streams.pii import mask_personal_data
from streams.text import fold_ascii, turkish_casefold

__all__ = [
    "citizen_keys",
    "coarse_cell",
    "distance_m",
    "geo_cell",
    "jaccard",
    "normalize_phone",
    "number_marks",
    "shingles",
    "text_signatures",
    "text_tokens",
]

STEM_LENGTH = 5
_SEED = 153  # fixed: signatures are persisted, so every worker and restart must agree
_SIGNATURE_DTYPE = np.dtype("<u2")

_URL_OR_MENTION = re.compile(r"https?://\S+|www\.\S+|@\w+")
_SUFFIX_AFTER_APOSTROPHE = re.compile(r"['’‘`]\w*")
_WORD = re.compile(r"[a-z0-9]+")
_ABBREVIATIONS = {
    "sk": "sokak",
    "sok": "sokak",
    "mah": "mahalle",
    "mh": "mahalle",
    "cad": "cadde",
    "cd": "cadde",
    "blv": "bulvar",
    "bulv": "bulvar",
}
# Stems of words that say nothing about the problem (address scaffolding, filler, courtesy).
_NOISE_STEMS = frozenset(
    (  # noqa: SIM905 - a list of words reads best as words
        "sokak sokag mahal cadde bulva adana no apt apart ve ile de da ki bu bir cok ama icin "
        "gibi hala yok var artik lutfe acil merha iyi gunle rica ederi tesek vatan bildi gelen "
        "kimse hic sayin ilgil yetki gereg arz saygi konu sikay dilek ekte"
    ).split()
)


def text_tokens(text_folded: str) -> list[str]:
    """Stemmed content words of a Turkish-casefolded text, personal data masked out first."""
    text = fold_ascii(turkish_casefold(mask_personal_data(text_folded)))
    text = _SUFFIX_AFTER_APOSTROPHE.sub("", _URL_OR_MENTION.sub(" ", text))
    tokens: list[str] = []
    for word in _WORD.findall(text):
        word = _ABBREVIATIONS.get(word, word)
        stem = word if word.isdigit() else word[:STEM_LENGTH]
        if stem not in _NOISE_STEMS:
            tokens.append(stem)
    return tokens


def shingles(tokens: Sequence[str], size: int = 2) -> set[str]:
    """Word ``size``-shingles; a text shorter than ``size`` words is one shingle."""
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


_FMIX32 = (np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35))


@lru_cache(maxsize=4)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``a`` (odd) and ``b`` of each permutation, drawn as datasketch 2 draws them."""
    gen = np.random.RandomState(_SEED)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _shingle_hash(item: str) -> int:
    return int.from_bytes(hashlib.sha1(item.encode("utf-8")).digest()[:4], "little")


def text_signatures(shingle_sets: Iterable[set[str]], num_perm: int) -> list[bytes]:
    """MinHash signatures (``num_perm`` × 16 bits) of many shingle sets at once.

    All the batch's shingles are hashed, mixed and permuted as one array, and each set's
    minima taken with one ``minimum.reduceat``. An empty set gives ``b""``: a text with no
    words is never similar to anything.
    """
    sets = list(shingle_sets)
    hashes: list[int] = []
    starts: list[int] = []
    for items in sets:
        if items:
            starts.append(len(hashes))
            hashes.extend(_shingle_hash(item) for item in items)
    if not hashes:
        return [b""] * len(sets)
    hv = np.array(hashes, dtype=np.uint32)
    m1, m2 = _FMIX32
    hv ^= hv >> np.uint32(16)
    hv *= m1
    hv ^= hv >> np.uint32(13)
    hv *= m2
    hv ^= hv >> np.uint32(16)
    a, b = _permutations(num_perm)
    minima = np.minimum.reduceat(hv[:, None] * a + b, starts, axis=0)  # uint32: mod 2³²
    rows = iter(minima.astype(_SIGNATURE_DTYPE))
    return [next(rows).tobytes() if items else b"" for items in sets]


def jaccard(signature: bytes, others: Sequence[bytes]) -> list[float]:
    """Estimated Jaccard similarity of ``signature`` with each of ``others`` (0 when unknown)."""
    if not signature or not others:
        return [0.0] * len(others)
    mine = np.frombuffer(signature, dtype=_SIGNATURE_DTYPE)
    scores = [0.0] * len(others)
    same = [i for i, other in enumerate(others) if len(other) == len(signature)]
    if same:
        matrix = np.frombuffer(b"".join(others[i] for i in same), dtype=_SIGNATURE_DTYPE)
        agree = (matrix.reshape(len(same), mine.size) == mine).mean(axis=1)
        for index, value in zip(same, agree.tolist(), strict=True):
            scores[index] = float(value)
    return scores


def number_marks(tokens: Sequence[str], limit: int = 4) -> tuple[int, ...]:
    """32-bit hashes of the numbers of three or more digits (street, building numbers).

    Two texts that both name numbers but no common one are about different places. (16 bits
    proved too few: among hundreds of numbered reports of one key, two collided.)
    """
    numbers = sorted({t for t in tokens if t.isdigit() and len(t) >= 3})[:limit]
    return tuple(int.from_bytes(hashlib.sha256(n.encode()).digest()[:4], "big") for n in numbers)


def normalize_phone(phone: str) -> str | None:
    """A phone number as international digits (``905321112233``); Turkish forms completed."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = "90" + digits[1:]
    elif len(digits) == 10 and digits[0] in "2345":
        digits = "90" + digits
    return digits if len(digits) >= 7 else None


def citizen_keys(contact: CitizenContact, salt: bytes) -> tuple[str, ...]:
    """Salted keys (64-bit HMAC-SHA-256, hex) of every identifier the contact carries."""
    found: list[str] = []
    phone = normalize_phone(contact.phone) if contact.phone else None
    if phone:
        found.append(f"tel:{phone}")
    if contact.email and "@" in contact.email:
        found.append(f"mail:{contact.email.strip().lower()}")
    if contact.handle and contact.handle.strip().lstrip("@"):
        found.append(f"handle:{contact.handle.strip().lstrip('@').lower()}")
    if contact.tc_kimlik_no:
        found.append(f"tckn:{contact.tc_kimlik_no}")
    return tuple(
        sorted({hmac.new(salt, k.encode(), hashlib.sha256).hexdigest()[:16] for k in found})
    )


_M_PER_DEGREE = 111_320.0
_EARTH_RADIUS_M = 6_371_008.8


def geo_cell(lat: float, lon: float, size_m: float = 250.0) -> str:
    """The ``row:col`` grid cell of about ``size_m`` × ``size_m`` holding a point.

    Rows are bands of equal latitude; each row's columns are as wide in metres as the rows
    are high (the degree width grows with 1/cos(latitude)).
    """
    row = math.floor(lat * _M_PER_DEGREE / size_m)
    centre = math.radians((row + 0.5) * size_m / _M_PER_DEGREE)
    width_deg = size_m / (_M_PER_DEGREE * max(math.cos(centre), 0.01))
    return f"{row}:{math.floor((lon + 180.0) / width_deg)}"


def coarse_cell(cell: str, factor: int = 16) -> str:
    """The cell ``factor`` × ``factor`` fine cells large containing ``cell`` (250 m → 4 km)."""
    row, col = (int(part) for part in cell.split(":"))
    return f"{row // factor}:{col // factor}"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
