"""``render_collage``: before/after photos of a case as one JPEG a citizen can be sent.

Pure and synchronous: bytes in, bytes out, no I/O. The output is a freshly drawn image, so
nothing of the inputs' metadata (EXIF with GPS, XMP, ICC) can leak into it; it is encoded
with fixed settings, so the same inputs give the same bytes. It is made to fit WhatsApp's
5 MB media limit by lowering the JPEG quality, then the scale, step by step.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sinks.collage.draw import draw_collage
from sinks.collage.layout import Rect, plan_layout
from sinks.collage.photos import (
    OpenedPhoto,
    PhotoInput,
    PhotoProblem,
    Side,
    load_photo,
    open_photo,
)

__all__ = ["CollageResult", "CollageSettings", "caption", "local_day", "render_collage"]

_SCALE_STEP = 0.8  # each scale step keeps 80 % of the side: 64 % of the pixels
_MIN_SIDE_PX = 160  # below this a collage is useless; give up instead
_SIDES: tuple[Side, Side] = ("before", "after")


class CollageSettings(BaseModel):
    """``INTAKE_COLLAGE__*``: size limits, JPEG encoding and the texts drawn on a collage."""

    model_config = ConfigDict(frozen=True)

    #: Largest JPEG in bytes; WhatsApp refuses images over 5 MB.
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=20_000)
    #: Longest side of the collage in px (before any shrinking to meet ``max_bytes``).
    max_side_px: int = Field(default=2048, ge=240, le=8192)
    #: Most pixels one photo may decode to (a baseline JPEG counts at 1/8 scale per side).
    max_input_pixels: int = Field(default=60_000_000, ge=1)
    #: More photos than this on one side are left out (and reported).
    max_photos_per_side: int = Field(default=4, ge=1, le=9)
    jpeg_quality: int = Field(default=85, ge=10, le=95)
    #: Quality is lowered down to this before the collage is scaled down.
    min_quality: int = Field(default=50, ge=10, le=95)
    before_label: str = "ÖNCE"
    after_label: str = "SONRA"
    #: Left of the header; empty for none.
    title: str = "Alo 153"
    tracking_label: str = "Takip No"
    #: Dates are shown as the calendar day in this zone (aware datetimes are converted).
    timezone: str = "Europe/Istanbul"

    @model_validator(mode="after")
    def _quality_range(self) -> CollageSettings:
        if self.min_quality > self.jpeg_quality:
            raise ValueError("min_quality must not be above jpeg_quality")
        try:  # fail at start-up, not at the first collage
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        return self


@dataclass(frozen=True, slots=True)
class CollageResult:
    """What :func:`render_collage` made, or why it made nothing, and which photos it left out."""

    #: The JPEG, or None when no collage could be made (see ``skipped_reason``).
    jpeg: bytes | None
    width: int
    height: int
    problems: tuple[PhotoProblem, ...]
    #: Why there is no collage ("no before photo", "no after photo" …); None when there is one.
    skipped_reason: str | None = None
    #: JPEG quality used (lower than configured when the size limit forced it).
    quality: int | None = None
    arrangement: Literal["stacked", "side_by_side"] | None = None


def render_collage(
    before: Sequence[PhotoInput],
    after: Sequence[PhotoInput],
    *,
    tracking_number: str,
    before_date: datetime | date,
    after_date: datetime | date,
    settings: CollageSettings | None = None,
) -> CollageResult:
    """Render the before/after collage of one case.

    Unusable photos (not an image, corrupt, too large) are left out and listed in
    ``problems``; without a usable photo on a side there is no collage (``jpeg`` is None)
    and the caller replies with text only. Never raises for bad photo bytes.
    """
    settings = settings or CollageSettings()
    problems: dict[tuple[int, int], PhotoProblem] = {}
    usable: dict[Side, list[OpenedPhoto]] = {"before": [], "after": []}
    for order, (side, photos) in enumerate(zip(_SIDES, (before, after), strict=True)):
        for index, photo in enumerate(photos):
            opened = open_photo(photo, side, index, max_pixels=settings.max_input_pixels)
            if isinstance(opened, PhotoProblem):
                problems[order, index] = opened
            else:
                usable[side].append(opened)
    while True:
        shown = {side: usable[side][: settings.max_photos_per_side] for side in _SIDES}
        missing = next((side for side in _SIDES if not shown[side]), None)
        if missing is not None:
            return _skipped(f"no {missing} photo", problems)
        layout = plan_layout(
            [photo.aspect for photo in shown["before"]],
            [photo.aspect for photo in shown["after"]],
            max_side=settings.max_side_px,
        )
        cells = {"before": layout.before_cells, "after": layout.after_cells}
        loaded: list[tuple[Rect, Image.Image]] = []
        failed = False
        for side in _SIDES:
            for opened, cell in zip(shown[side], cells[side], strict=True):
                image = load_photo(opened, (cell.w, cell.h))
                if isinstance(image, PhotoProblem):
                    problems[_SIDES.index(side), opened.index] = image
                    usable[side] = [kept for kept in usable[side] if kept is not opened]
                    failed = True
                else:
                    loaded.append((cell, image))
        if not failed:  # otherwise plan again without the photos that failed to decode
            break
    for order, side in enumerate(_SIDES):
        for opened in usable[side][settings.max_photos_per_side :]:
            problems[order, opened.index] = PhotoProblem(
                side,
                opened.photo.name,
                f"not shown: more than {settings.max_photos_per_side} photos on this side",
            )
    zone = ZoneInfo(settings.timezone)
    canvas = draw_collage(
        layout,
        loaded,
        title=settings.title,
        tracking=f"{settings.tracking_label}: {tracking_number}",
        before=caption(settings.before_label, before_date, zone),
        after=caption(settings.after_label, after_date, zone),
    )
    encoded = _encode(canvas, settings)
    if encoded is None:
        return _skipped(f"collage does not fit in {settings.max_bytes} bytes", problems)
    data, size, quality = encoded
    return CollageResult(
        jpeg=data,
        width=size[0],
        height=size[1],
        problems=_in_order(problems),
        quality=quality,
        arrangement="stacked" if layout.stacked else "side_by_side",
    )


def _in_order(problems: dict[tuple[int, int], PhotoProblem]) -> tuple[PhotoProblem, ...]:
    return tuple(problems[key] for key in sorted(problems))


def _skipped(reason: str, problems: dict[tuple[int, int], PhotoProblem]) -> CollageResult:
    return CollageResult(
        jpeg=None, width=0, height=0, problems=_in_order(problems), skipped_reason=reason
    )


def caption(label: str, when: datetime | date, zone: ZoneInfo) -> str:
    """A label bar's text: ``ÖNCE · 03.03.2025`` (Turkish day.month.year)."""
    return f"{label} · {local_day(when, zone):%d.%m.%Y}"


def local_day(value: datetime | date, zone: ZoneInfo) -> date:
    """The calendar day of ``value`` in ``zone``; naive datetimes are taken as local already."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    return value


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """Encode with fixed settings only: same pixels, same bytes. No EXIF, no ICC profile."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling="4:2:0", optimize=True)
    return buffer.getvalue()


def _encode(
    canvas: Image.Image, settings: CollageSettings
) -> tuple[bytes, tuple[int, int], int] | None:
    """The best JPEG under ``max_bytes``: highest quality first, then smaller and smaller."""
    image, step = canvas, 0
    while max(image.size) >= _MIN_SIDE_PX:
        found = _best_quality(image, settings)
        if found is not None:
            return found[0], image.size, found[1]
        step += 1
        scale = _SCALE_STEP**step
        size = (max(1, math.floor(canvas.width * scale)), max(1, math.floor(canvas.height * scale)))
        image = canvas.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return None


def _best_quality(image: Image.Image, settings: CollageSettings) -> tuple[bytes, int] | None:
    """The highest quality in [min_quality, jpeg_quality] that fits, by bisection."""
    data = _jpeg(image, settings.jpeg_quality)
    if len(data) <= settings.max_bytes:
        return data, settings.jpeg_quality
    low, high = settings.min_quality, settings.jpeg_quality
    best = _jpeg(image, low)
    if len(best) > settings.max_bytes:
        return None
    while high - low > 1:  # ``low`` fits, ``high`` does not
        middle = (low + high) // 2
        data = _jpeg(image, middle)
        if len(data) <= settings.max_bytes:
            low, best = middle, data
        else:
            high = middle
    return best, low
