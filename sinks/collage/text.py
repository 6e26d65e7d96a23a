"""Turkish text on Pillow's bundled font, so a collage looks the same on every machine.

``ImageFont.load_default(size=…)`` (Pillow ≥ 10.1) is a subset of Aileron Regular with
ASCII and a few symbols only: Ç Ğ İ Ö Ş Ü and ç ğ ı ö ş ü are missing and would come out
as empty boxes. Rather than depend on the machine's fonts, a letter with a diacritic is
drawn as its ASCII base letter plus the mark: dots are copied from the font's own ``i``,
cedilla, breve and circumflex are drawn with its stroke width; the dotless ı is an ``i``
with its dot erased. Letters with other marks (or from other scripts) stay as the font
draws them, i.e. as boxes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

__all__ = ["TextBlock", "bundled_font", "render_text", "text_width"]

_DIAERESIS, _DOT, _CEDILLA, _BREVE, _CIRCUMFLEX = "\u0308", "\u0307", "\u0327", "\u0306", "\u0302"
_MARKS = frozenset({_DIAERESIS, _DOT, _CEDILLA, _BREVE, _CIRCUMFLEX})
_DOTLESS_I = "ı"


@lru_cache(maxsize=128)
def bundled_font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled Aileron at ``size`` px (basic layout: no machine-dependent shaping)."""
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Pillow has no FreeType support; the collage needs it for text")
    return font


@dataclass(frozen=True, slots=True)
class _Metrics:
    """What marks are placed by: the font's ``i`` dot and its distance to the stem."""

    dot: Image.Image
    gap: int
    x_top: int  # top of lowercase letters, relative to the baseline (negative)
    stroke: int


@lru_cache(maxsize=128)
def _metrics(size: int) -> _Metrics:
    font = bundled_font(size)
    x_top = int(font.getbbox("x", anchor="ls")[1])
    canvas = Image.new("L", (2 * size, 3 * size), 0)
    baseline = 2 * size
    ImageDraw.Draw(canvas).text((size // 2, baseline), "i", font=font, fill=255, anchor="ls")
    dot_box = canvas.crop((0, 0, canvas.width, baseline + x_top)).getbbox()
    if dot_box is None:  # cannot happen with Aileron; keep a plain square dot then
        dot, gap = Image.new("L", (2, 2), 255), 1
    else:
        dot, gap = canvas.crop(dot_box), max(1, baseline + x_top - dot_box[3])
    return _Metrics(dot=dot, gap=gap, x_top=x_top, stroke=max(1, round(size * 0.075)))


def _split(char: str) -> tuple[str, tuple[str, ...]]:
    """The ASCII letter to draw and the marks to add for one character."""
    if char == _DOTLESS_I:
        return "i", ()
    if char.isascii():
        return char, ()
    decomposed = unicodedata.normalize("NFD", char)
    base, marks = decomposed[0], tuple(decomposed[1:])
    if base.isascii() and marks and all(mark in _MARKS for mark in marks):
        return base, marks
    return char, ()


def _ascii_text(text: str) -> str:
    return "".join(_split(char)[0] for char in text)


def text_width(text: str, size: int) -> int:
    """Width in px of ``text`` as :func:`render_text` draws it at ``size``."""
    return round(bundled_font(size).getlength(_ascii_text(text)))


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Rendered text: an 8-bit coverage mask and the rows of its baseline and cap height."""

    mask: Image.Image
    baseline: int
    cap_top: int


def render_text(text: str, size: int) -> TextBlock:
    """Draw ``text`` at ``size`` px into a coverage mask (255 = ink), Turkish letters included."""
    font = bundled_font(size)
    metrics = _metrics(size)
    ascent, descent = (int(value) for value in font.getmetrics())
    cap_top = int(font.getbbox("H", anchor="ls")[1])  # negative: above the baseline
    # Room for a mark above a capital and for a cedilla below the baseline.
    top = max(ascent, -cap_top + metrics.gap + metrics.dot.height + round(size * 0.15))
    bottom = max(descent, round(size * 0.3))
    plain = _ascii_text(text)
    mask = Image.new("L", (max(1, text_width(text, size) + 2), top + bottom), 0)
    draw = ImageDraw.Draw(mask)
    draw.text((0, top), plain, fill=255, font=font, anchor="ls")
    for index, char in enumerate(text):
        base, marks = _split(char)
        if not marks and char != _DOTLESS_I:
            continue
        origin = font.getlength(plain[:index])
        left, glyph_top, right, glyph_bottom = font.getbbox(base, anchor="ls")
        box = (
            round(origin + left),
            top + int(glyph_top),
            round(origin + right),
            top + int(glyph_bottom),
        )
        if char == _DOTLESS_I:
            # Erase everything of this glyph above the x-height: that is the dot.
            mask.paste(0, (box[0], 0, box[2], top + metrics.x_top))
        for mark in marks:
            _draw_mark(mask, draw, mark, box, size, metrics)
    return TextBlock(mask=mask, baseline=top, cap_top=top + cap_top)


def _draw_mark(
    mask: Image.Image,
    draw: ImageDraw.ImageDraw,
    mark: str,
    box: tuple[int, int, int, int],
    size: int,
    metrics: _Metrics,
) -> None:
    """One diacritic over (or under) the glyph whose ink box is ``box``."""
    left, top, right, bottom = box
    centre = (left + right) / 2
    above = top - metrics.gap  # first row not to touch
    dot = metrics.dot
    if mark in (_DIAERESIS, _DOT):
        spread = max(dot.width * 0.9, (right - left) * 0.22) if mark == _DIAERESIS else 0.0
        for x in {round(centre - spread - dot.width / 2), round(centre + spread - dot.width / 2)}:
            mask.paste(255, (x, above - dot.height), dot)
    elif mark == _BREVE:
        half, height = max(dot.width, (right - left) * 0.27), max(2.0, size * 0.13)
        bowl = (centre - half, above - 2 * height, centre + half, above - 1)
        draw.arc(bowl, 0, 180, fill=255, width=metrics.stroke)
    elif mark == _CIRCUMFLEX:
        half, height = max(dot.width, (right - left) * 0.25), max(2.0, size * 0.12)
        peak = [(centre - half, above - 1), (centre, above - height), (centre + half, above - 1)]
        draw.line(peak, fill=255, width=metrics.stroke, joint="curve")
    elif mark == _CEDILLA:
        draw.line(
            [(centre, bottom - 1), (centre, bottom + size * 0.08)], fill=255, width=metrics.stroke
        )
        hook = size * 0.09
        draw.arc(
            (centre - hook, bottom + size * 0.05, centre + hook, bottom + size * 0.05 + 2 * hook),
            270,
            150,
            fill=255,
            width=metrics.stroke,
        )
