"""The routing targets (units, districts, outside bodies), read from ``taxonomy.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Taxonomy", "taxonomy"]


@dataclass(frozen=True)
class Taxonomy:
    """Codes and Turkish display names of every routing target."""

    units: dict[str, str]
    districts: dict[str, str]
    bodies: dict[str, str]


@cache
def taxonomy() -> Taxonomy:
    """Load the packaged taxonomy once."""
    text = resources.files("schemas").joinpath("taxonomy.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return Taxonomy(
        units=dict(data["units"]), districts=dict(data["districts"]), bodies=dict(data["bodies"])
    )
