"""Phrase rules of the classifier: the taxonomy's cue lists over folded text.

Everything the team may want to change (unit phrases, type and urgency cues, outside-body
cues, districts and their mahalleler, metropolitan roads) lives in ``taxonomy.toml`` next to
this module; this module only compiles and applies it. Pure functions, no I/O after loading.
Text clean-up and folding live in ``folding`` (re-exported here).

Phrase syntax (folded ASCII, lower case, see :func:`fold_text`): a phrase matches at the start
of a word and every word of it may carry Turkish suffixes (``cop`` matches ``copler``,
``su kesik`` matches ``sular kesildi``); a word ending in ``$`` must end there (``park$``
matches ``parkta`` only after the fold splits ``park'ta`` into ``park ta``).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from schemas.case import MessageType, Responsible, Urgency
from schemas.taxonomy import taxonomy
from streams.classify.folding import clean_text, fold_text
from streams.classify.phrases import phrase_regex

__all__ = [
    "TAXONOMY_PATH",
    "Hit",
    "Matcher",
    "Override",
    "Rules",
    "TaxonomyError",
    "clean_text",
    "fold_text",
    "load_rules",
]

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.toml")


class TaxonomyError(ValueError):
    """The classifier taxonomy file is malformed or names an unknown code."""


class Hit(NamedTuple):
    """One phrase found in a folded text."""

    key: str
    phrase: str
    start: int
    end: int


class Matcher:
    """All phrases of one cue family compiled into one regex; ``""`` keys shadow (ignore)."""

    def __init__(self, entries: Iterable[tuple[str, str]], negations: frozenset[str] = frozenset()):
        # Longest first (the first phrase that matches at a position wins), then the empty
        # key first, so an ignore phrase shadows the same phrase under a real key.
        ordered = sorted(set(entries), key=lambda e: (e[1][0], -len(e[1]), e[1], e[0]))
        self._entries = ordered
        compiled = phrase_regex([phrase for _, phrase in ordered])
        self._regex: re.Pattern[str] | None = compiled[0] if compiled else None
        self._order = compiled[1] if compiled else []
        self._negations = negations

    def hits(self, folded: str) -> list[Hit]:
        """Every non-shadowed, non-negated phrase occurrence, left to right."""
        if self._regex is None:
            return []
        found = []
        for match in self._regex.finditer(folded):
            key, phrase = self._entries[self._order[(match.lastindex or 1) - 1]]
            if key and not self._negated(folded, match.end()):
                found.append(Hit(key, phrase, match.start(), match.end()))
        return found

    def phrases(self, key: str) -> list[str]:
        """The phrases that stand for ``key``."""
        return [phrase for k, phrase in self._entries if k == key]

    def counts(self, folded: str) -> Counter[str]:
        """How many phrase occurrences each key has in ``folded``."""
        return Counter(hit.key for hit in self.hits(folded))

    def _negated(self, folded: str, end: int) -> bool:
        if not self._negations:
            return False
        words = folded[end : end + 60].split()
        if end < len(folded) and folded[end] != " ":
            words = words[1:]  # the rest of the matched word is a suffix, not a new word
        for word in words[:3]:
            if word == "var":
                return False
            if word in self._negations:
                return True
        return False


def _known(keys: Iterable[str], allowed: Iterable[str], kind: str) -> None:
    unknown = set(keys) - set(allowed)
    if unknown:
        raise TaxonomyError(f"{kind}: unknown code(s) {sorted(unknown)}; known: {sorted(allowed)}")


def _checked(phrase: str, kind: str) -> str:
    bare = phrase.replace("$", "")
    if not bare.strip() or fold_text(bare) != bare:
        raise TaxonomyError(
            f"{kind}: phrase {phrase!r} is not in folded ASCII form (write {fold_text(bare)!r})"
        )
    return phrase


def _entries(
    table: Mapping[str, Iterable[str]], kind: str, allowed: Iterable[str], ignore: Iterable[str]
) -> list[tuple[str, str]]:
    """(key, phrase) pairs of a cue table, plus ``ignore`` phrases under the empty key."""
    _known(table, allowed, kind)
    pairs = [(key, _checked(p, kind)) for key, phrases in table.items() for p in phrases]
    return pairs + [("", _checked(p, kind)) for p in ignore]


@dataclass(frozen=True)
class Override:
    """A Law 5216 exception: for ``units``, a cue in the text hands the case to ``responsible``."""

    responsible: Responsible
    body: str | None
    units: frozenset[str]
    cues: Matcher


@dataclass(frozen=True)
class Rules:
    """The compiled taxonomy: one matcher per cue family plus the Law 5216 decisions."""

    units: Matcher
    types: Matcher
    urgency: Matcher
    victims: Matcher
    districts: Matcher
    closings: Matcher
    default_responsible: dict[str, tuple[Responsible, str | None]]
    overrides: tuple[Override, ...]

    def unit_counts(self, folded: str) -> Counter[str]:
        """Phrase hits per unit code; the unit named first gets one more (the main problem
        of a message is usually the first one it raises)."""
        hits = self.units.hits(folded)
        counts = Counter(hit.key for hit in hits)
        if hits:
            counts[hits[0].key] += 1
        return counts

    def type_counts(self, folded: str) -> Counter[str]:
        """Cue hits per message type."""
        return self.types.counts(folded)

    def urgency_of(self, folded: str) -> Urgency:
        """``alo-183`` for abuse of a woman, child, elderly or disabled person; ``acil`` for
        danger to life or property now; else normal. Cues followed by a negation
        ("yangın yok", "gaz kokusu yok artık") do not count.

        ALO 183 comes first: a beating in progress is both, and the abuse line must hear of it
        (both urgencies reach ``intake.emergency``).
        """
        keys = {hit.key for hit in self.urgency.hits(folded)}
        if Urgency.ALO_183.value in keys and self.victims.hits(folded):
            return Urgency.ALO_183
        return Urgency.ACIL if Urgency.ACIL.value in keys else Urgency.NORMAL

    def district_of(self, folded: str) -> str | None:
        """The district named most often (district or mahalle names); first mention on a tie.

        Places after the last closing formula ("arz ederim", "saygılarımla") are the writer's
        own address in a petition's signature, not where the problem is: they do not count.
        """
        closing = self.closings.hits(folded)
        end = closing[-1].end if closing else len(folded)
        hits = [hit for hit in self.districts.hits(folded) if hit.start < end]
        if not hits:
            return None
        counts = Counter(hit.key for hit in hits)
        best = max(counts.values())
        return next(hit.key for hit in hits if counts[hit.key] == best)

    def responsible_for(self, unit: str, folded: str) -> tuple[Responsible, str | None]:
        """Who is in charge of ``unit``'s problem described in ``folded`` (Law 5216).

        The first override (in taxonomy order) that covers ``unit`` and whose cue occurs
        wins: outside bodies first (a gas smell reported as a fire goes to the gas company),
        then metropolitan roads and places, then district exceptions; else the unit's default.
        """
        for override in self.overrides:
            if unit in override.units and override.cues.hits(folded):
                return override.responsible, override.body
        return self.default_responsible.get(unit, (Responsible.METROPOLITAN, None))


@cache
def load_rules(path: Path = TAXONOMY_PATH) -> Rules:
    """Compile the taxonomy at ``path`` once (default: the packaged file); TaxonomyError if bad."""
    try:
        return _compile(tomllib.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise TaxonomyError(f"{path}: {exc!r}") from exc


def _responsible(value: str) -> tuple[Responsible, str | None]:
    """``"ilce"`` → (DISTRICT, None); ``"dis-kurum:elektrik"`` → (EXTERNAL, "elektrik")."""
    who, _, body = value.partition(":")
    responsible = Responsible(who)
    if (responsible is Responsible.EXTERNAL) != bool(body):
        raise TaxonomyError(f"responsible {value!r}: only dis-kurum takes a body, and needs one")
    if body:
        _known([body], taxonomy().bodies, "bodies")
    return responsible, body or None


def _compile(data: Mapping[str, Any]) -> Rules:
    codes = taxonomy()
    negations = frozenset(data["negations"]["words"])
    ignore = data.get("ignore", {})

    def matcher(
        table: Mapping[str, Iterable[str]], kind: str, allowed: Iterable[str], negate: bool = False
    ) -> Matcher:
        entries = _entries(table, kind, allowed, ignore.get(kind, ()))
        return Matcher(entries, negations if negate else frozenset())

    defaults = {unit: _responsible(who) for unit, who in data["responsible"]["units"].items()}
    _known(defaults, codes.units, "responsible.units")
    overrides = []
    for spec in data["responsible"]["overrides"]:
        _known(spec["units"], codes.units, "responsible.overrides")
        who, body = _responsible(spec["responsible"])
        cues = matcher({"cue": spec["phrases"]}, "responsible", ["cue"])
        overrides.append(Override(who, body, frozenset(spec["units"]), cues))
    return Rules(
        units=matcher(data["units"], "units", codes.units),
        types=matcher(data["types"], "types", [t.value for t in MessageType]),
        urgency=matcher(data["urgency"], "urgency", [u.value for u in Urgency], negate=True),
        victims=matcher({"victim": data["victims"]["phrases"]}, "victims", ["victim"]),
        districts=matcher(data["districts"], "districts", codes.districts),
        closings=matcher({"closing": data["closings"]["phrases"]}, "closings", ["closing"]),
        default_responsible=defaults,
        overrides=tuple(overrides),
    )
