"""Drawing a planned collage: coloured bars, white Turkish text, photos centred in cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from PIL import Image

from sinks.collage.layout import Layout, Rect
from sinks.collage.text import render_text, text_width

__all__ = ["AFTER_COLOUR", "BEFORE_COLOUR", "PANEL_COLOUR", "draw_collage"]

_CANVAS = (255, 255, 255)
_HEADER = (31, 41, 51)
_TEXT = (255, 255, 255)
#: Label bar colours and the letterbox behind photos (tests look for them).
BEFORE_COLOUR = (180, 35, 24)
AFTER_COLOUR = (19, 115, 51)
PANEL_COLOUR = (24, 24, 27)
_MIN_FONT_PX = 8


def draw_collage(
    layout: Layout,
    photos: Sequence[tuple[Rect, Image.Image]],
    *,
    title: str,
    tracking: str,
    before: str,
    after: str,
) -> Image.Image:
    """A new RGB image with the bars, texts and photos of ``layout`` (no metadata at all).

    ``photos`` are already fitted to their cells; they are closed once pasted.
    """
    canvas = Image.new("RGB", (layout.width, layout.height), _CANVAS)
    size, pad = layout.font_size, max(2, round(layout.font_size * 0.6))
    header = layout.header
    canvas.paste(_HEADER, header.box)
    texts = [title, tracking] if title else [tracking]
    header_size = _fitting_size(texts, header.w - (len(texts) + 1) * pad, size)
    tracking = _shortened(tracking, header_size, header.w - 2 * pad)
    _put_text(canvas, header, tracking, header_size, pad, align="right")
    title_room = header.w - 3 * pad - text_width(tracking, header_size)
    if title and title_room > 0:
        _put_text(canvas, header, _shortened(title, header_size, title_room), header_size, pad)
    for rect, colour, text in (
        (layout.before_label, BEFORE_COLOUR, before),
        (layout.after_label, AFTER_COLOUR, after),
    ):
        canvas.paste(colour, rect.box)
        label_size = _fitting_size([text], rect.w - 2 * pad, size)
        _put_text(canvas, rect, _shortened(text, label_size, rect.w - 2 * pad), label_size, pad)
    for panel in (layout.before_panel, layout.after_panel):
        canvas.paste(PANEL_COLOUR, panel.box)
    for cell, photo in photos:
        corner = (cell.x + (cell.w - photo.width) // 2, cell.y + (cell.h - photo.height) // 2)
        canvas.paste(photo, corner)
        photo.close()
    return canvas


def _fitting_size(texts: Sequence[str], room: int, size: int) -> int:
    """The largest font size ≤ ``size`` at which ``texts`` side by side fit in ``room`` px."""
    while size > _MIN_FONT_PX and sum(text_width(t, size) for t in texts) > room:
        size -= 1
    return size


def _shortened(text: str, size: int, room: int) -> str:
    """``text`` cut with an ellipsis until it fits in ``room`` px (for absurdly long input)."""
    while len(text) > 1 and text_width(text, size) > room:
        text = text[:-2].rstrip() + "…"
    return text


def _put_text(
    canvas: Image.Image,
    rect: Rect,
    text: str,
    size: int,
    pad: int,
    align: Literal["left", "right"] = "left",
) -> None:
    """Draw ``text`` in white inside ``rect``, capitals centred vertically, clipped to it."""
    block = render_text(text, size)
    middle = (block.cap_top + block.baseline) / 2
    top = round(rect.h / 2 - middle)
    width = text_width(text, size)
    left = pad if align == "left" else rect.w - pad - width
    layer = Image.new("L", (rect.w, rect.h), 0)
    layer.paste(block.mask, (left, top))
    canvas.paste(_TEXT, rect.box, layer)
