"""Raw event → ``CitizenMessage``: one shape for every channel (pure functions).

Each channel's normalizer is ``streams.normalizers.<channel>.normalize``; a channel whose
module does not exist yet is refused with ``UnsupportedChannel`` (and dead-lettered).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from schemas.common import Channel
from schemas.message import CitizenMessage
from schemas.raw import RawEvent
from streams.errors import UnsupportedChannel

__all__ = ["normalize", "normalizer_for"]

Normalizer = Callable[[RawEvent], CitizenMessage]


@cache
def normalizer_for(channel: Channel) -> Normalizer:
    """The normalizer of ``channel``; ``UnsupportedChannel`` when there is none."""
    try:
        module = importlib.import_module(f"streams.normalizers.{channel.value}")
    except ModuleNotFoundError as exc:
        if exc.name != f"streams.normalizers.{channel.value}":
            raise
        raise UnsupportedChannel(f"no normalizer for channel {channel.value!r}") from None
    function: Normalizer = module.normalize
    return function


def normalize(raw: RawEvent) -> CitizenMessage:
    """Normalize a raw event of any channel that has a normalizer."""
    return normalizer_for(raw.channel)(raw)
