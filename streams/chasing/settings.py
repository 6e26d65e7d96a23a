"""``INTAKE_CHASING__*``: when units are reminded and escalated, and whom the e-mails go to.

Lists and mappings are given as JSON in the environment or in ``.env``, e.g.::

    INTAKE_CHASING__ENABLED=true
    INTAKE_CHASING__INTERVAL_S=900
    INTAKE_CHASING__REMIND_WORKING_DAYS_BEFORE=2
    INTAKE_CHASING__LADDER='[{"level": "birim", "after_working_days": 0},
                             {"level": "daire-baskani", "after_working_days": 2},
                             {"level": "baskan-yardimcisi", "after_working_days": 5}]'
    INTAKE_CHASING__DEFAULT_CONTACTS='{"birim": "153-takip@adana.bel.tr",
                                       "daire-baskani": "daire-takip@adana.bel.tr"}'
    INTAKE_CHASING__CONTACTS='{"su-kanalizasyon": {"birim": "aski-takip@adana.bel.tr"}}'

(one line each in a real ``.env``). Unit codes and levels are checked when the settings are
built, so a typo stops the program at start instead of leaving a unit unchased.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.taxonomy import taxonomy

__all__ = ["ChasingSettings", "LadderStep"]

#: How the default levels are addressed in e-mails and case notes.
DEFAULT_TITLES = {
    "birim": "Birim yetkilisi",
    "daire-baskani": "Daire Başkanı",
    "genel-sekreter-yardimcisi": "Genel Sekreter Yardımcısı",
    "baskan-yardimcisi": "Başkan Yardımcısı",
}


class LadderStep(BaseModel):
    """One rung of the escalation ladder.

    ``after_working_days`` = k: the escalation goes out on the (k+1)-th working day after the due
    date, i.e. once k full working days have passed since the deadline ran out. With a due date
    of Wednesday 17 June 2026: k=0 → Thursday 18 June, k=2 → Monday 22 June.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    after_working_days: int = Field(ge=0, le=365)


def _default_ladder() -> list[LadderStep]:
    return [
        LadderStep(level="birim", after_working_days=0),
        LadderStep(level="daire-baskani", after_working_days=2),
        LadderStep(level="genel-sekreter-yardimcisi", after_working_days=5),
    ]


class ChasingSettings(BaseModel):
    """How units that do not answer are chased (mounted as ``Settings.chasing``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    #: Seconds between two looks at the open cases.
    interval_s: float = Field(default=900.0, gt=0)
    #: The reminder goes out on the first working day with at most this many working days left
    #: before the due date (0: on the due date itself); None: no reminders.
    remind_working_days_before: int | None = Field(default=2, ge=0, le=60)
    #: Who gets the reminder.
    remind_level: str = "birim"
    #: Escalation rungs in the order they are climbed.
    ladder: list[LadderStep] = Field(default_factory=_default_ladder)
    #: Unit code → level → e-mail address.
    contacts: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: Level → e-mail address, for units (or levels) without their own entry.
    default_contacts: dict[str, str] = Field(default_factory=dict)
    #: Level → how the addressee is named in e-mails and case notes (Turkish).
    titles: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TITLES))
    #: A round stops mailing after this many transient SMTP failures in a row (relay down).
    max_transient_failures: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ChasingSettings:
        levels = [step.level for step in self.ladder]
        if len(set(levels)) != len(levels):
            raise ValueError(f"chasing ladder repeats a level: {levels}")
        days = [step.after_working_days for step in self.ladder]
        if days != sorted(days):
            raise ValueError(f"chasing ladder must climb in order of after_working_days: {days}")
        known = {*levels, self.remind_level}
        units = taxonomy().units
        for unit, by_level in self.contacts.items():
            if unit not in units:
                raise ValueError(f"chasing contacts: unknown unit code {unit!r}")
            _check_levels(f"contacts[{unit!r}]", by_level, known)
        _check_levels("default_contacts", self.default_contacts, known)
        return self

    def address(self, unit: str | None, level: str) -> str | None:
        """The e-mail address for ``level`` of ``unit``: its own entry, else the default."""
        own = self.contacts.get(unit or "", {}).get(level)
        return own or self.default_contacts.get(level) or None

    def title(self, level: str) -> str:
        """How the addressee of ``level`` is named (the level code when no title is set)."""
        return self.titles.get(level, level)


def _check_levels(where: str, by_level: dict[str, str], known: set[str]) -> None:
    for level, address in by_level.items():
        if level not in known:
            raise ValueError(
                f"chasing {where}: unknown level {level!r}; expected one of {sorted(known)}"
            )
        if "@" not in address:
            # The value may be a mistyped address: name the level only.
            raise ValueError(f"chasing {where}[{level!r}] is not an e-mail address")
