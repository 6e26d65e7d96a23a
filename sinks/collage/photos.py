"""Reading the photos of a collage: sort out what is not an image, refuse bombs, decode small.

Reading happens in two steps so that a huge photo is never decoded at full size:
:func:`open_photo` reads only the header (format, size, EXIF orientation) and refuses
non-images, unsupported formats and too many pixels; :func:`load_photo` decodes the image
already reduced towards the size it will be shown at (JPEG's DCT scaling through
``Image.draft``), applies the EXIF orientation and drops everything but the pixels.
A corrupt file usually passes the first step and fails the second; both give a
:class:`PhotoProblem` instead of raising.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from PIL import ExifTags, Image, ImageOps

from schemas.common import AttachmentRef
from sinks.blobstore import sniff_content_type

__all__ = ["OpenedPhoto", "PhotoInput", "PhotoProblem", "Side", "load_photo", "open_photo"]

Side = Literal["before", "after"]

#: Formats Pillow may try (JPEG includes phones' MPO). Others (EPS runs Ghostscript, PSD,
#: ICO …) are refused unread.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_TURNING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # turned by 90°: width and height swap
_BACKGROUND = (255, 255, 255)  # what transparent pixels become
_UNKNOWN = "application/octet-stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class PhotoInput:
    """One attachment offered for a collage: its bytes, declared type and a name for reports."""

    data: bytes
    #: The declared type; the bytes' own signature wins when it says something else.
    content_type: str | None = None
    #: How problems name this photo in logs: a blob digest, say (file names can hold names).
    name: str

    @classmethod
    def from_ref(cls, ref: AttachmentRef, data: bytes) -> PhotoInput:
        """A photo from the blob store, named by its digest (file names may hold personal data)."""
        return cls(data=data, content_type=ref.content_type, name=ref.sha256[:16])


@dataclass(frozen=True, slots=True)
class PhotoProblem:
    """A photo left out of the collage, and why (English, for logs)."""

    side: Side
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class OpenedPhoto:
    """A photo whose header was read: the size it has once EXIF orientation is applied."""

    side: Side
    index: int
    photo: PhotoInput
    width: int
    height: int
    #: The EXIF orientation turns the stored image by 90°: stored width is shown height.
    turned: bool

    @property
    def aspect(self) -> float:
        """Width over height, as shown."""
        return self.width / self.height


def _error_text(error: BaseException) -> str:
    """The first line of an error, short (Pillow's messages hold no personal data)."""
    text = str(error).splitlines()[0] if str(error) else ""
    return (text or type(error).__name__)[:160]


def open_photo(
    photo: PhotoInput, side: Side, index: int, *, max_pixels: int
) -> OpenedPhoto | PhotoProblem:
    """Read the header of one photo; a problem when it is not a usable image."""
    kind = sniff_content_type(photo.data, photo.content_type)
    if not kind.startswith("image/") and kind != _UNKNOWN:  # unknown: Pillow may know it
        return PhotoProblem(side, photo.name, f"not an image ({kind})")
    try:
        with _own_pixel_limit():
            image = Image.open(io.BytesIO(photo.data), formats=FORMATS)
        with image:
            width, height = image.size
            decoded = _smallest_decode(image)
            if decoded[0] * decoded[1] > max_pixels:
                return PhotoProblem(
                    side, photo.name, f"too many pixels ({width}×{height}), skipped"
                )
            orientation = _orientation(image)
    except Image.DecompressionBombError as error:
        return PhotoProblem(side, photo.name, f"decompression bomb refused: {_error_text(error)}")
    except Image.UnidentifiedImageError:
        return PhotoProblem(side, photo.name, f"unsupported or unreadable image ({kind})")
    except Exception as error:  # plugins raise anything on malformed files
        return PhotoProblem(side, photo.name, f"corrupt image: {_error_text(error)}")
    if width < 1 or height < 1:
        return PhotoProblem(side, photo.name, "corrupt image: empty size")
    turned = orientation in _TURNING_ORIENTATIONS
    if turned:
        width, height = height, width
    return OpenedPhoto(
        side=side, index=index, photo=photo, width=width, height=height, turned=turned
    )


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1: as stored) from what the header holds, without decoding."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # looking for an eXIf chunk after the pixel data would decode them all
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) else 1


def _smallest_decode(image: Image.Image) -> tuple[int, int]:
    """The smallest size this image can be decoded at: baseline JPEG down to 1/8 by DCT scaling.

    A progressive JPEG keeps every coefficient in memory whatever the scale, so it counts
    at full size like every other format.
    """
    width, height = image.size
    if image.format in ("JPEG", "MPO") and not image.info.get("progressive"):
        return (-(-width // 8), -(-height // 8))
    return (width, height)


@contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Silence Pillow's global bomb warning (89 MP): ``max_pixels`` replaces it.

    Pillow's limit counts the stored pixels, ours the decoded ones, so a 108 MP JPEG that
    decodes at 1/8 passes. Pillow's hard limit (twice the warning) still raises
    ``DecompressionBombError``, which becomes a problem like any other.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def load_photo(opened: OpenedPhoto, box: tuple[int, int]) -> Image.Image | PhotoProblem:
    """Decode one photo upright, as RGB, fitted inside ``box`` (px) keeping its aspect.

    The result is a new image without EXIF, XMP or ICC data; transparency becomes white.
    """
    photo = opened.photo
    planned = _fit((opened.width, opened.height), box)
    try:
        with _own_pixel_limit():
            image = Image.open(io.BytesIO(photo.data), formats=FORMATS)
        with image:
            image.draft("RGB", (planned[1], planned[0]) if opened.turned else planned)
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _flatten(upright)
    except Image.DecompressionBombError as error:
        reason = f"decompression bomb refused: {_error_text(error)}"
        return PhotoProblem(opened.side, photo.name, reason)
    except Exception as error:  # plugins raise anything on malformed files
        return PhotoProblem(opened.side, photo.name, f"corrupt image: {_error_text(error)}")
    target = _fit(pixels.size, box)  # as planned, unless a late EXIF chunk turned it
    if pixels.size != target:
        pixels = pixels.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return pixels


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the aspect of ``size`` that fits in ``box``.

    A side within a pixel of the box takes the box's size: no hairline of background.
    """
    scale = min(box[0] / size[0], box[1] / size[1])
    fitted = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    return (
        box[0] if box[0] - fitted[0] <= 1 else fitted[0],
        box[1] if box[1] - fitted[1] <= 1 else fitted[1],
    )


def _flatten(image: Image.Image) -> Image.Image:
    """A fresh RGB image with the pixels only: alpha over white; palette, grey, CMYK converted."""
    if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit grey: keep the top 8 bits
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    rgb = image.convert("RGB")
    fresh = Image.new("RGB", rgb.size)
    fresh.paste(rgb)
    return fresh
