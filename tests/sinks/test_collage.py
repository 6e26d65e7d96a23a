"""Before/after collages: layout, Turkish text, EXIF, bad inputs, size limit, determinism, goldens.

Input photos are drawn here: a solid colour with a blue square in the top-left quarter, so
where a photo landed and which way up it is can be read back from the output's pixels.
Goldens live in ``golden/collage``; regenerate them after an intended visual change with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/sinks/test_collage.py`` and look at them.
"""

from __future__ import annotations

import io
import os
import random
import struct
import warnings
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageDraw, ImageStat
from pydantic import ValidationError

from schemas.common import AttachmentRef
from sinks.collage import (
    CollageResult,
    CollageSettings,
    PhotoInput,
    PhotoProblem,
    render_collage,
)
from sinks.collage.draw import AFTER_COLOUR, BEFORE_COLOUR
from sinks.collage.layout import Rect, plan_layout
from sinks.collage.render import caption, local_day
from sinks.collage.text import bundled_font, render_text, text_width

GOLDEN = Path(__file__).parent / "golden" / "collage"
RED, GREEN, BLUE = (200, 40, 40), (40, 160, 70), (20, 40, 230)
ORANGE, PURPLE = (230, 150, 40), (140, 50, 200)
TRACKING = "153-7K2MX-9QXD4T"
SMALL = CollageSettings(max_side_px=480)
ISTANBUL = ZoneInfo("Europe/Istanbul")


def picture(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    """A solid photo with a blue square in its top-left quarter."""
    image = Image.new("RGB", size, colour)
    w, h = size
    ImageDraw.Draw(image).rectangle((w * 0.1, h * 0.1, w * 0.35, h * 0.35), fill=BLUE)
    return image


def encoded(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(
    size: tuple[int, int] = (800, 600),
    colour: tuple[int, int, int] = RED,
    name: str = "photo",
    **options: Any,
) -> PhotoInput:
    return PhotoInput(data=encoded(picture(size, colour), **options), name=name)


def render(
    before: Sequence[PhotoInput],
    after: Sequence[PhotoInput],
    settings: CollageSettings = SMALL,
) -> CollageResult:
    return render_collage(
        before,
        after,
        tracking_number=TRACKING,
        before_date=date(2025, 3, 3),
        after_date=datetime(2025, 3, 11, 22, 30, tzinfo=UTC),  # 12.03.2025 in Türkiye
        settings=settings,
    )


def decoded(result: CollageResult) -> Image.Image:
    assert result.jpeg is not None, result.skipped_reason
    image = Image.open(io.BytesIO(result.jpeg))
    assert image.format == "JPEG"
    assert image.size == (result.width, result.height)
    return image.convert("RGB")


def colour_at(image: Image.Image, rect: Rect, rel: tuple[float, float, float, float]) -> tuple:
    """Mean colour of a part of ``rect`` given as fractions (left, top, right, bottom)."""
    box = (
        round(rect.x + rect.w * rel[0]),
        round(rect.y + rect.h * rel[1]),
        round(rect.x + rect.w * rel[2]),
        round(rect.y + rect.h * rel[3]),
    )
    return tuple(round(v) for v in ImageStat.Stat(image.crop(box)).mean)


def near(actual: Sequence[float], expected: Sequence[float], tolerance: float = 20) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


MIDDLE = (0.45, 0.55, 0.55, 0.7)  # below the blue square, inside every photo
TOP_LEFT, TOP_RIGHT = (0.15, 0.15, 0.3, 0.3), (0.7, 0.15, 0.85, 0.3)


# --- layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "stacked"),
    [
        ([4 / 3], [4 / 3], True),
        ([16 / 9], [4 / 3, 4 / 3], True),
        ([3 / 4], [3 / 4], False),
        ([1.0], [1.0], False),  # square counts as portrait: side by side
        ([3 / 4, 4 / 3], [1.0], False),  # geometric mean 1.0
        ([4 / 3, 4 / 3], [3 / 4], True),  # mean above 1
    ],
)
def test_arrangement_follows_the_mean_aspect(
    before: list[float], after: list[float], stacked: bool
) -> None:
    layout = plan_layout(before, after, max_side=1000)
    assert layout.stacked is stacked
    assert max(layout.width, layout.height) in range(996, 1001)
    if stacked:
        assert layout.after_panel.y > layout.before_panel.y + layout.before_panel.h
    else:
        assert layout.after_panel.x > layout.before_panel.x + layout.before_panel.w


def boxes_overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def inside(inner: Rect, outer: Rect) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and inner.x + inner.w <= outer.x + outer.w
        and inner.y + inner.h <= outer.y + outer.h
    )


@pytest.mark.parametrize("counts", [(1, 1), (2, 1), (3, 1), (1, 4), (3, 4), (2, 2)])
@pytest.mark.parametrize("aspect", [4 / 3, 3 / 4])
def test_cells_fill_their_panel_without_overlap(counts: tuple[int, int], aspect: float) -> None:
    layout = plan_layout([aspect] * counts[0], [aspect] * counts[1], max_side=1200)
    canvas = Rect(0, 0, layout.width, layout.height)
    bars = [layout.header, layout.before_label, layout.after_label]
    assert layout.before_panel.w == layout.after_panel.w
    assert layout.before_panel.h == layout.after_panel.h
    for panel, cells, count in (
        (layout.before_panel, layout.before_cells, counts[0]),
        (layout.after_panel, layout.after_cells, counts[1]),
    ):
        assert len(cells) == count and inside(panel, canvas)
        assert not any(boxes_overlap(panel, bar) for bar in bars)
        assert all(inside(cell, panel) for cell in cells)
        assert not any(boxes_overlap(a, b) for i, a in enumerate(cells) for b in cells[i + 1 :])
        # The cells use most of the panel (no tiny photos in a big box).
        assert sum(c.w * c.h for c in cells) >= 0.45 * panel.w * panel.h


def test_grids_tile_photos_along_the_free_direction() -> None:
    wide = plan_layout([4 / 3, 4 / 3], [4 / 3], max_side=1000)
    assert wide.before_cells[0].y == wide.before_cells[1].y  # two landscapes: one row
    tall = plan_layout([3 / 4, 3 / 4], [3 / 4], max_side=1000)
    assert tall.before_cells[0].x == tall.before_cells[1].x  # two portraits: one column
    # Three next to four: a 2×2 grid whose incomplete last row is centred.
    layout = plan_layout([4 / 3] * 3, [4 / 3] * 4, max_side=1000)
    first, _, last = layout.before_cells
    panel = layout.before_panel
    assert last.y > first.y
    assert abs((last.x + last.w / 2) - (panel.x + panel.w / 2)) <= 2


def test_a_collage_needs_both_sides() -> None:
    with pytest.raises(ValueError):
        plan_layout([], [1.0], max_side=1000)


# --- Turkish text on the bundled font -------------------------------------------------


def test_the_bundled_font_lacks_turkish_letters_so_they_are_composed() -> None:
    font = bundled_font(40)
    assert bytes(font.getmask("Ö")) == bytes(font.getmask("Ş"))  # both the missing-glyph box
    assert bytes(font.getmask("Ö")) != bytes(font.getmask("O"))
    assert text_width("ÖNCE ışığı", 40) == text_width("ONCE isigi", 40)


@pytest.mark.parametrize(("marked", "plain"), [("Ö", "O"), ("Ü", "U"), ("İ", "I"), ("Ğ", "G")])
def test_capitals_get_their_mark_above(marked: str, plain: str) -> None:
    with_mark, without = render_text(marked, 40), render_text(plain, 40)
    mark_box, plain_box = with_mark.mask.getbbox(), without.mask.getbbox()
    assert mark_box is not None and plain_box is not None
    assert mark_box[1] <= plain_box[1] - 4  # ink well above the letter
    letter = (0, plain_box[1], with_mark.mask.width, with_mark.mask.height)
    assert with_mark.mask.crop(letter).tobytes() == without.mask.crop(letter).tobytes()


@pytest.mark.parametrize(
    ("marked", "plain"), [("Ö", "O"), ("ö", "o"), ("ü", "u"), ("ğ", "g"), ("â", "a")]
)
def test_marks_above_do_not_touch_the_letter(marked: str, plain: str) -> None:
    with_mark, without = render_text(marked, 12), render_text(plain, 12)
    plain_box = without.mask.getbbox()
    assert plain_box is not None
    above = with_mark.mask.crop((0, 0, with_mark.mask.width, plain_box[1]))
    rows = [above.crop((0, y, above.width, y + 1)).getbbox() for y in range(above.height)]
    assert rows[-1] is None, "no gap between the mark and the letter at 12 px"
    assert any(rows), "no mark drawn"


@pytest.mark.parametrize(("marked", "plain"), [("Ş", "S"), ("Ç", "C"), ("ş", "s"), ("ç", "c")])
def test_cedilla_hangs_below_the_baseline(marked: str, plain: str) -> None:
    with_mark, without = render_text(marked, 40), render_text(plain, 40)
    mark_box, plain_box = with_mark.mask.getbbox(), without.mask.getbbox()
    assert mark_box is not None and plain_box is not None
    assert plain_box[3] <= without.baseline + 2
    assert mark_box[3] >= with_mark.baseline + 6


def test_dotless_i_is_an_i_without_its_dot() -> None:
    dotless, dotted = render_text("ı", 40), render_text("i", 40)
    x_top = dotted.baseline + int(bundled_font(40).getbbox("x", anchor="ls")[1])
    above = (0, 0, dotless.mask.width, x_top)
    assert dotted.mask.crop(above).getbbox() is not None
    assert dotless.mask.crop(above).getbbox() is None
    below = (0, x_top, dotless.mask.width, dotless.mask.height)
    assert dotless.mask.crop(below).tobytes() == dotted.mask.crop(below).tobytes()


# --- rendering ---------------------------------------------------------------------------


def test_landscape_before_on_top_after_below_with_labels() -> None:
    result = render([photo(colour=RED)], [photo(colour=GREEN)])
    image = decoded(result)
    layout = plan_layout([4 / 3], [4 / 3], max_side=480)
    assert result.arrangement == "stacked" and result.problems == ()
    assert (result.width, result.height) == (layout.width, layout.height)
    assert near(colour_at(image, layout.before_cells[0], MIDDLE), RED)
    assert near(colour_at(image, layout.after_cells[0], MIDDLE), GREEN)
    assert near(colour_at(image, layout.before_cells[0], TOP_LEFT), BLUE)
    # 800×600 in a 270×202 cell is 269.3 px wide: the photo takes the last column too.
    last_column = (layout.width - 1, 100, layout.width, 200)
    assert layout.before_cells[0].w == layout.width == 270
    assert near(ImageStat.Stat(image.crop(last_column)).mean, RED, 30)
    # Label bars: their colour right of the text, and white text at the left.
    assert near(colour_at(image, layout.before_label, (0.8, 0.2, 0.95, 0.8)), BEFORE_COLOUR)
    assert near(colour_at(image, layout.after_label, (0.8, 0.2, 0.95, 0.8)), AFTER_COLOUR)
    text = image.crop(layout.before_label.box).convert("L")
    assert text.point(lambda v: 255 if v > 200 else 0).getbbox() is not None


def test_portraits_stand_side_by_side_before_on_the_left() -> None:
    result = render([photo((600, 800), RED)], [photo((600, 800), GREEN)])
    image = decoded(result)
    layout = plan_layout([3 / 4], [3 / 4], max_side=480)
    assert result.arrangement == "side_by_side"
    assert near(colour_at(image, layout.before_cells[0], MIDDLE), RED)
    assert near(colour_at(image, layout.after_cells[0], MIDDLE), GREEN)
    assert layout.before_cells[0].x < layout.after_cells[0].x


def exif_with_gps(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (37.0, 0.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (35.0, 19.0, 0.0)
    return exif


def test_exif_orientation_applied_and_all_metadata_removed() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored = encoded(
        picture((800, 600), RED),
        exif=exif_with_gps(6),  # shown turned 90° clockwise: a 600×800 portrait
        icc_profile=icc,
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Seyhan</x:xmpmeta>',
    )
    source = Image.open(io.BytesIO(stored))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
    assert b"Exif" in stored and b"xmpmeta" in stored and "icc_profile" in source.info
    result = render([PhotoInput(data=stored, name="exif")], [photo((600, 800), GREEN)])
    image = decoded(result)
    layout = plan_layout([3 / 4], [3 / 4], max_side=480)
    assert result.arrangement == "side_by_side"
    cell = layout.before_cells[0]
    assert near(colour_at(image, cell, TOP_RIGHT), BLUE)  # the stored top-left corner
    assert near(colour_at(image, cell, TOP_LEFT), RED)
    out = Image.open(io.BytesIO(result.jpeg or b""))
    assert len(out.getexif()) == 0
    assert "icc_profile" not in out.info and "exif" not in out.info and "xmp" not in out.info
    for marker in (b"Exif", b"xmpmeta", b"ICC_PROFILE", b"TestPhone", b"Seyhan"):
        assert marker not in (result.jpeg or b"")


def test_several_photos_per_side_are_tiled_in_order() -> None:
    before = [photo(colour=c, name=f"b{i}") for i, c in enumerate((RED, ORANGE, PURPLE))]
    result = render(before, [photo(colour=GREEN)])
    image = decoded(result)
    layout = plan_layout([4 / 3] * 3, [4 / 3], max_side=480)
    cells = layout.before_cells
    assert [cell.x for cell in cells] == sorted(cell.x for cell in cells)  # one row, in order
    for cell, colour in zip(cells, (RED, ORANGE, PURPLE), strict=True):
        assert near(colour_at(image, cell, MIDDLE), colour)
    assert near(colour_at(image, layout.after_cells[0], MIDDLE), GREEN)


def test_photos_beyond_the_limit_are_reported_not_shown() -> None:
    settings = CollageSettings(max_side_px=480, max_photos_per_side=2)
    before = [photo(colour=c, name=f"b{i}") for i, c in enumerate((RED, ORANGE, PURPLE))]
    result = render(before, [photo(colour=GREEN)], settings)
    assert result.problems == (
        PhotoProblem("before", "b2", "not shown: more than 2 photos on this side"),
    )
    layout = plan_layout([4 / 3] * 2, [4 / 3], max_side=480)
    assert (result.width, result.height) == (layout.width, layout.height)


PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ([], [photo(colour=GREEN)], "no before photo"),
        ([photo()], [], "no after photo"),
        (
            [PhotoInput(data=PDF, content_type="image/jpeg", name="pdf")],
            [photo()],
            "no before photo",
        ),
    ],
)
def test_a_side_without_a_usable_photo_gives_no_collage(
    before: list[PhotoInput], after: list[PhotoInput], reason: str
) -> None:
    result = render(before, after)
    assert (result.jpeg, result.skipped_reason, result.arrangement) == (None, reason, None)
    if before and before[0].name == "pdf":  # the bytes' signature beats the declared type
        assert result.problems == (PhotoProblem("before", "pdf", "not an image (application/pdf)"),)


def truncated_jpeg() -> bytes:
    data = encoded(picture((800, 600), PURPLE), quality=95)
    return data[: len(data) // 3]


def test_bad_attachments_are_problems_and_the_rest_is_used() -> None:
    ico = encoded(picture((64, 64), RED), "ICO")  # a real image, but not a format we read
    before = [
        PhotoInput(data=PDF, content_type="application/pdf", name="pdf"),
        photo(colour=RED, name="good-before"),
        PhotoInput(data=b"\x00garbage" * 50, content_type="image/jpeg", name="garbage"),
        PhotoInput(data=ico, content_type="image/x-icon", name="icon"),
        PhotoInput(data=b"\x01unknown" * 50, name="unknown"),
    ]
    after = [PhotoInput(data=truncated_jpeg(), name="truncated"), photo(colour=GREEN, name="ok")]
    result = render(before, after)
    image = decoded(result)
    reasons = [(p.side, p.name, p.reason) for p in result.problems]
    assert reasons[:4] == [
        ("before", "pdf", "not an image (application/pdf)"),
        ("before", "garbage", "unsupported or unreadable image (image/jpeg)"),
        ("before", "icon", "unsupported or unreadable image (image/x-icon)"),
        ("before", "unknown", "unsupported or unreadable image (application/octet-stream)"),
    ]
    assert reasons[4][:2] == ("after", "truncated")
    assert reasons[4][2].startswith("corrupt image: ") and "truncated" in reasons[4][2]
    layout = plan_layout([4 / 3], [4 / 3], max_side=480)
    assert near(colour_at(image, layout.before_cells[0], MIDDLE), RED)
    assert near(colour_at(image, layout.after_cells[0], MIDDLE), GREEN)


def test_a_photo_failing_to_decode_is_dropped_from_the_layout() -> None:
    good = photo(colour=RED, name="good")
    after = [photo(colour=GREEN)]
    with_corrupt = render([good, PhotoInput(data=truncated_jpeg(), name="bad")], after)
    assert [p.name for p in with_corrupt.problems] == ["bad"]
    assert with_corrupt.jpeg == render([good], after).jpeg  # one full-size cell, as if alone


@pytest.mark.parametrize(
    ("mode", "fmt", "expected"),
    [
        ("L", "PNG", (128, 128, 128)),
        ("I;16", "PNG", (117, 117, 117)),  # 30000 of 65535, not clipped to white
        ("P", "GIF", RED),
        ("CMYK", "JPEG", RED),
        ("RGB", "TIFF", RED),  # no signature the blob store knows: Pillow decides
        ("RGB", "BMP", RED),
        ("RGBA", "PNG", (255, 255, 255)),  # fully transparent: white, not black
    ],
)
def test_other_image_modes_become_rgb(mode: str, fmt: str, expected: tuple[int, ...]) -> None:
    if mode == "RGBA":
        image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    elif mode == "I;16":
        image = Image.new("I;16", (400, 300), 30000)
    else:
        image = Image.new("RGB", (400, 300), RED if mode != "L" else expected).convert(mode)
    result = render([PhotoInput(data=encoded(image, fmt), name=mode)], [photo(colour=GREEN)])
    layout = plan_layout([4 / 3], [4 / 3], max_side=480)
    assert result.problems == ()
    assert near(colour_at(decoded(result), layout.before_cells[0], MIDDLE), expected, 25)


def png_header_claiming(width: int, height: int) -> bytes:
    """A real 1×1 PNG whose IHDR (with a valid CRC) claims another size."""
    data = bytearray(encoded(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_pixel_limits_refuse_bombs_without_decoding() -> None:
    settings = CollageSettings(max_side_px=480, max_input_pixels=1_000_000)
    big = picture((4000, 3000), RED)
    before = [
        PhotoInput(data=png_header_claiming(20_000, 20_000), name="bomb"),  # over Pillow's limit
        PhotoInput(data=png_header_claiming(2000, 1000), name="png"),  # over ours
        PhotoInput(data=encoded(big, progressive=True), name="progressive"),  # counted in full
        PhotoInput(data=encoded(big), name="baseline"),  # decodes at 1/8: 500×375
    ]
    filters = list(warnings.filters)
    result = render(before, [photo(colour=GREEN)], settings)
    assert warnings.filters == filters
    reasons = {p.name: p.reason for p in result.problems}
    assert reasons["bomb"].startswith("decompression bomb refused")
    assert reasons["png"] == "too many pixels (2000×1000), skipped"
    assert reasons["progressive"] == "too many pixels (4000×3000), skipped"
    assert "baseline" not in reasons and result.jpeg is not None


@pytest.fixture(scope="module")
def huge_noise_jpeg() -> bytes:
    """12000×9000 (108 MP) of random 8×8 blocks: a large decode, a 20 MB file."""
    noise = random.Random(153).randbytes(1500 * 1125 * 3)
    small = Image.frombytes("RGB", (1500, 1125), noise)
    return encoded(small.resize((12_000, 9_000), Image.Resampling.NEAREST), quality=90)


def test_a_huge_photo_is_downscaled(huge_noise_jpeg: bytes) -> None:
    result = render_collage(
        [PhotoInput(data=huge_noise_jpeg, name="huge")],
        [photo((4000, 3000), GREEN)],
        tracking_number=TRACKING,
        before_date=date(2025, 3, 3),
        after_date=date(2025, 3, 12),
    )
    assert result.problems == () and result.jpeg is not None
    assert max(result.width, result.height) <= 2048
    assert len(result.jpeg) <= 5 * 1024 * 1024


def noisy_photos(count: int, seed: int) -> list[PhotoInput]:
    rng = random.Random(seed)
    return [
        PhotoInput(
            data=encoded(Image.frombytes("RGB", (800, 600), rng.randbytes(800 * 600 * 3))),
            name=f"noise{i}",
        )
        for i in range(count)
    ]


def test_size_limit_lowers_quality_then_scale() -> None:
    before, after = noisy_photos(2, 1), noisy_photos(2, 2)
    free = render(before, after, CollageSettings(max_side_px=1024))
    lowest = render(before, after, CollageSettings(max_side_px=1024, jpeg_quality=50))
    assert free.jpeg is not None and lowest.jpeg is not None
    # Noise does not compress: 300 KB needs a lower quality, 200 KB a smaller collage.
    assert 200_000 < len(lowest.jpeg) < 300_000 < len(free.jpeg)
    fitted = render(before, after, CollageSettings(max_side_px=1024, max_bytes=300_000))
    assert fitted.jpeg is not None and len(fitted.jpeg) <= 300_000
    assert (fitted.width, fitted.height) == (free.width, free.height)
    assert fitted.quality is not None and 50 < fitted.quality < 85
    # Bisection finds the highest quality that fits: one more does not.
    over = render(before, after, CollageSettings(max_side_px=1024, jpeg_quality=fitted.quality + 1))
    assert over.jpeg is not None and len(over.jpeg) > 300_000
    shrunk = render(before, after, CollageSettings(max_side_px=1024, max_bytes=200_000))
    assert shrunk.jpeg is not None and len(shrunk.jpeg) <= 200_000
    assert max(shrunk.width, shrunk.height) < max(free.width, free.height)
    assert shrunk.width / shrunk.height == pytest.approx(free.width / free.height, rel=0.01)
    decoded(shrunk)


def test_same_inputs_give_the_same_bytes() -> None:
    def inputs() -> tuple[list[PhotoInput], list[PhotoInput]]:
        return (
            [photo(colour=RED), PhotoInput(data=truncated_jpeg(), name="bad")],
            [*noisy_photos(1, 7), photo((600, 800), GREEN)],
        )

    first, second = render(*inputs()), render(*inputs())
    assert first.jpeg is not None and first.jpeg == second.jpeg
    assert first.problems == second.problems


def test_dates_are_the_turkish_calendar_day() -> None:
    assert local_day(datetime(2025, 3, 11, 22, 30, tzinfo=UTC), ISTANBUL) == date(2025, 3, 12)
    assert local_day(datetime(2025, 3, 11, 22, 30), ISTANBUL) == date(2025, 3, 11)
    assert local_day(date(2025, 3, 11), ISTANBUL) == date(2025, 3, 11)
    when = datetime(2025, 3, 11, 22, 30, tzinfo=UTC)
    assert caption("SONRA", when, ISTANBUL) == "SONRA · 12.03.2025"
    assert caption("ÖNCE", date(2025, 1, 5), ISTANBUL) == "ÖNCE · 05.01.2025"


def region_difference(a: CollageResult, b: CollageResult, rect: Rect) -> float:
    diff = ImageChops.difference(decoded(a).crop(rect.box), decoded(b).crop(rect.box))
    return sum(ImageStat.Stat(diff).mean) / 3


def test_texts_come_from_the_case() -> None:
    before, after = [photo(colour=RED)], [photo(colour=GREEN)]
    layout = plan_layout([4 / 3], [4 / 3], max_side=480)

    def made(tracking: str = TRACKING, day: int = 3) -> CollageResult:
        return render_collage(
            before,
            after,
            tracking_number=tracking,
            before_date=date(2025, 3, day),
            after_date=date(2025, 3, 12),
            settings=SMALL,
        )

    # "Same" allows JPEG blocks (16 px) that straddle two bars.
    base, other_number, other_day = made(), made("153-ABCDE-FGHJK1"), made(day=28)
    assert region_difference(base, other_number, layout.header) > 1.0
    assert region_difference(base, other_number, layout.before_label) < 0.2
    assert region_difference(base, other_day, layout.before_label) > 0.5
    assert region_difference(base, other_day, layout.after_label) < 0.2
    assert region_difference(base, other_day, layout.header) < 0.2
    absurd = made("X" * 400)  # cut with an ellipsis, drawn inside the header only
    assert absurd.jpeg is not None
    assert region_difference(base, absurd, layout.before_label) < 0.2


def test_settings_refuse_inconsistent_values() -> None:
    with pytest.raises(ValidationError):
        CollageSettings(jpeg_quality=60, min_quality=70)
    with pytest.raises(ValidationError):
        CollageSettings(timezone="Europe/Adana")


def test_photo_from_a_blob_reference_is_named_by_digest() -> None:
    ref = AttachmentRef(sha256="ab" * 32, size=3, content_type="image/png", filename="Ayşe.png")
    made = PhotoInput.from_ref(ref, b"abc")
    assert (made.name, made.content_type, made.data) == ("ab" * 8, "image/png", b"abc")


# --- goldens -----------------------------------------------------------------------------

# Tolerance: the same code on another Pillow, libjpeg-turbo or FreeType build differs by
# rounding (JPEG blocks, anti-aliased glyph edges): well under 2 levels on average, and
# the worst 1 % of channel values (edges of text) within 40. A moved, missing or recoloured
# element changes whole regions and breaks both (see the test right after the goldens).
MAX_MEAN_DIFF = 2.0
MAX_P99_DIFF = 40


def difference(got: Image.Image, want: Image.Image) -> tuple[float, int]:
    """Mean absolute difference per channel value and its 99th percentile."""
    histogram = ImageChops.difference(got, want).histogram()
    counts = [sum(histogram[band * 256 + value] for band in range(3)) for value in range(256)]
    total = sum(counts)
    mean = sum(value * count for value, count in enumerate(counts)) / total
    running = 0
    for value, count in enumerate(counts):
        running += count
        if running >= 0.99 * total:
            return mean, value
    return mean, 255


def golden_inputs(name: str) -> tuple[list[PhotoInput], list[PhotoInput], CollageSettings]:
    settings = CollageSettings(max_side_px=480, title="Adana Büyükşehir Belediyesi")
    turned = encoded(picture((800, 600), ORANGE), exif=exif_with_gps(6))
    cases = {
        "stacked": ([photo(colour=RED)], [photo(colour=GREEN)]),
        "side_by_side": (
            [photo((600, 800), RED), PhotoInput(data=turned, name="turned")],
            [photo((600, 800), GREEN)],
        ),
        "three_and_one": (
            [photo(colour=c) for c in (RED, ORANGE, PURPLE)],
            [photo((1600, 900), GREEN)],
        ),
    }
    return (*cases[name], settings)


@pytest.mark.parametrize("name", ["stacked", "side_by_side", "three_and_one"])
def test_matches_golden(name: str) -> None:
    before, after, settings = golden_inputs(name)
    result = render(before, after, settings)
    assert result.jpeg is not None
    path = GOLDEN / f"{name}.jpg"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(result.jpeg)
    assert path.is_file(), f"no golden {path.name}: run UPDATE_GOLDEN=1 pytest {__file__}"
    want = Image.open(path).convert("RGB")
    got = decoded(result)
    assert got.size == want.size
    mean, p99 = difference(got, want)
    assert mean <= MAX_MEAN_DIFF and p99 <= MAX_P99_DIFF, (mean, p99)


def test_golden_tolerance_takes_codec_noise_but_not_a_shift() -> None:
    want = Image.open(GOLDEN / "stacked.jpg").convert("RGB")
    recoded = Image.open(io.BytesIO(encoded(want, quality=90))).convert("RGB")
    mean, p99 = difference(recoded, want)
    assert mean <= MAX_MEAN_DIFF and p99 <= MAX_P99_DIFF
    for dx, dy in ((0, 1), (1, 0)):  # everything one pixel off
        mean, p99 = difference(ImageChops.offset(want, dx, dy), want)
        assert mean > MAX_MEAN_DIFF or p99 > MAX_P99_DIFF
