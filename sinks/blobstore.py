"""Content-addressed attachment store: files named by the SHA-256 of their bytes.

The same bytes stored twice are one file, so a replayed upload changes nothing. Writes go
to a temporary file first and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from schemas.common import AttachmentRef
from sinks.errors import BlobTooLarge

__all__ = ["BlobStore", "safe_filename", "sniff_content_type"]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def sniff_content_type(data: bytes, declared: str | None = None) -> str:
    """The content type from the bytes themselves; the declared one only when nothing matches."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) > 12 and data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1"):
        return "image/heic"
    return declared if declared and "/" in declared else "application/octet-stream"


def safe_filename(name: str | None) -> str | None:
    """A file name with no directory parts or control characters (Turkish letters kept)."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:255] or None


class BlobStore:
    """A directory of blobs: ``<root>/<aa>/<bb>/<sha256>``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (it may not exist)."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(
        self, data: bytes, *, filename: str | None = None, declared_type: str | None = None
    ) -> AttachmentRef:
        """Store bytes (idempotently) and return their reference."""
        if len(data) > self.max_bytes:
            raise BlobTooLarge(f"attachment of {len(data)} bytes is over {self.max_bytes}")
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return AttachmentRef(
            sha256=digest,
            size=len(data),
            content_type=sniff_content_type(data, declared_type),
            filename=safe_filename(filename),
        )

    def get(self, ref: AttachmentRef | str) -> bytes:
        """The bytes of a stored blob; ``FileNotFoundError`` when it is not there."""
        digest = ref.sha256 if isinstance(ref, AttachmentRef) else ref
        return self.path_for(digest).read_bytes()

    def exists(self, ref: AttachmentRef | str) -> bool:
        """Whether the blob is stored."""
        digest = ref.sha256 if isinstance(ref, AttachmentRef) else ref
        return self.path_for(digest).is_file()
