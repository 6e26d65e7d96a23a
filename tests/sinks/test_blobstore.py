"""The content-addressed blob store on a real directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sinks.blobstore import BlobStore, safe_filename, sniff_content_type
from sinks.errors import BlobTooLarge

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = "%PDF-1.7\nBilgi edinme başvurusu — Çukurova\n".encode()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes=64 * 1024)


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_put_then_get_round_trip(blobs: BlobStore) -> None:
    ref = blobs.put(JPEG, filename="Çukurova_fotoğraf.jpg", declared_type="image/jpeg")
    assert ref.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert (ref.size, ref.content_type, ref.filename) == (
        len(JPEG),
        "image/jpeg",
        "Çukurova_fotoğraf.jpg",
    )
    assert ref.uri == f"blob:sha256:{ref.sha256}"
    assert blobs.get(ref) == JPEG
    assert blobs.get(ref.sha256) == JPEG
    assert blobs.exists(ref)


def test_same_bytes_twice_are_one_file(blobs: BlobStore) -> None:
    first = blobs.put(PDF, filename="başvuru.pdf")
    second = blobs.put(PDF, filename="kopya.pdf")
    assert first.sha256 == second.sha256
    assert stored_files(blobs.root) == [blobs.path_for(first.sha256)]


def test_content_sniffing_beats_a_lying_declared_type(blobs: BlobStore) -> None:
    ref = blobs.put(PNG, filename="fatura.pdf", declared_type="application/pdf")
    assert ref.content_type == "image/png"
    assert sniff_content_type(b"just text", "text/plain") == "text/plain"
    assert sniff_content_type(b"just text", "garbage") == "application/octet-stream"


def test_too_large_is_refused_and_nothing_is_written(blobs: BlobStore) -> None:
    with pytest.raises(BlobTooLarge):
        blobs.put(b"\x00" * (blobs.max_bytes + 1))
    assert not blobs.root.exists() or stored_files(blobs.root) == []


def test_missing_blob_and_bad_digest(blobs: BlobStore) -> None:
    absent = hashlib.sha256(b"yok").hexdigest()
    assert not blobs.exists(absent)
    with pytest.raises(FileNotFoundError):
        blobs.get(absent)
    with pytest.raises(ValueError):
        blobs.path_for("../../etc/passwd")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system32.dll", "system32.dll"),
        ("Çukurova_fotoğraf.jpg", "Çukurova_fotoğraf.jpg"),
        ("İmamoğlu ışık arızası.png", "İmamoğlu ışık arızası.png"),
        ("foto\x00;rm -rf.jpg", "foto_rm -rf.jpg"),
        ("..", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_filename(given: str | None, expected: str | None) -> None:
    assert safe_filename(given) == expected
