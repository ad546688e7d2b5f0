"""What a phone or an attacker can send as a photo, and what it costs the web process.

A maintainer's 200 MP phone JPEG is stored at 2400 px; a 5 KB file whose header claims
14000 x 14000 pixels is refused before anything is decoded; a GIF or TIFF named ``.jpg`` is
refused for what it really is; a photo's decode is bounded in pixels, in memory and in how
many run at once. (The same attacks against the running stack: tests/test_photo_bombs_live.py.)
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.photo_files import bomb_jpeg, huge_jpeg, progressive_jpeg
from the_flip.apps.maintenance import photos
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia
from the_flip.apps.maintenance.uploads import UploadRejected

ROOT = Path(__file__).resolve().parent.parent


def upload(path: Path, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type=content_type)


def attach(client, machine, path: Path, content_type: str = "image/jpeg"):
    entry = LogEntry.objects.create(machine=machine)
    return client.post(f"/api/log-entries/{entry.pk}/media/", {"file": upload(path, content_type)})


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height (valid header, no picture data): enough for open()."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def peak_memory_of_cleaning(path: Path) -> dict:
    """clean_photo in a fresh process: peak RSS growth in MB, and the outcome."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "photo_memory.py"), "--one", str(path)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=120,
    ).stdout  # fmt: skip
    return json.loads(out)


@pytest.fixture(scope="module")
def phone_200mp_jpeg(tmp_path_factory) -> Path:
    """A real, fully decodable 16320 x 12240 JPEG (Samsung's 200 MP mode), 3 MB."""
    return huge_jpeg(tmp_path_factory.mktemp("photos") / "20261201_093000.jpg", 16320, 12240)


# --- a maintainer's big photos -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_200_megapixel_phone_jpeg_is_stored_at_2400_px(
    maintainer_client, machine, phone_200mp_jpeg
):
    response = attach(maintainer_client, machine, phone_200mp_jpeg)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "ready"
    media = LogEntryMedia.objects.get(pk=response.json()["id"])
    with media.file.open("rb") as stored, Image.open(stored) as picture:
        assert picture.format == "JPEG"
        assert picture.size == (2400, 1800)
        # The stripes survive at the right place: top rows red, further down another colour.
        top, lower = picture.getpixel((1200, 5)), picture.getpixel((1200, 300))
        assert top[0] > 150 and top[1] < 90, top
        assert lower != top


@pytest.mark.django_db
def test_a_large_heic_is_decoded_and_shrunk_in_strips_without_losing_its_layout(
    maintainer_client, machine, tmp_path
):
    """Long side >= 2 x 2400: reduced strip by strip from libheif's buffer (photos.py)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    panorama = Image.new("RGB", (4800, 640), (200, 30, 30))
    panorama.paste((30, 30, 200), (0, 320, 4800, 640))  # lower half blue
    heic = tmp_path / "IMG_0004.HEIC"
    panorama.save(heic, "HEIF", quality=50)
    response = attach(maintainer_client, machine, heic, "image/heic")
    assert response.status_code == 201, response.content
    media = LogEntryMedia.objects.get(pk=response.json()["id"])
    with media.file.open("rb") as stored, Image.open(stored) as picture:
        assert picture.size == (2400, 320)
        red, blue = picture.getpixel((1200, 40)), picture.getpixel((1200, 280))
        assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0], (red, blue)


def test_the_pixel_budget_admits_a_48_mp_iphone_photo_and_refuses_beyond_50_mp(tmp_path):
    """HEIC, PNG, WebP and progressive JPEG hold their full size while decoding."""
    iphone_48mp = png_header(tmp_path / "IMG_0005.png", 8064, 6048)  # 48.8 MP
    android_50mp = png_header(tmp_path / "IMG_0006.png", 8160, 6120)  # 49.9 MP
    too_big = png_header(tmp_path / "IMG_0007.png", 8200, 6150)  # 50.4 MP
    for allowed in (iphone_48mp, android_50mp):
        with Image.open(allowed) as image:
            photos.check_decode_size(image, allowed.name, 2400, allowed.stat().st_size)
    with Image.open(too_big) as image, pytest.raises(UploadRejected) as refused:
        photos.check_decode_size(image, too_big.name, 2400, too_big.stat().st_size)
    assert "too many pixels" in str(refused.value) and "50 megapixels" in str(refused.value)


def test_a_baseline_jpeg_counts_at_the_size_libjpeg_decodes_it(tmp_path, phone_200mp_jpeg):
    with Image.open(phone_200mp_jpeg) as image:
        assert photos.decoded_pixels(image, 2400) == 4080 * 3060  # 1/4 scale, still >= 2400
    progressive = progressive_jpeg(tmp_path / "progressive.jpg", 8200, 6150)
    with Image.open(progressive) as image:
        assert photos.decoded_pixels(image, 2400) == 8200 * 6150  # every coefficient is kept
        with pytest.raises(UploadRejected, match="too many pixels"):
            photos.check_decode_size(image, "progressive.jpg", 2400, progressive.stat().st_size)


# --- bombs ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_5_kb_jpeg_claiming_14000_by_14000_pixels_is_refused_before_decoding(
    maintainer_client, machine, tmp_path
):
    bomb = bomb_jpeg(tmp_path / "IMG_6666.jpg")
    assert bomb.stat().st_size < 10_000
    response = attach(maintainer_client, machine, bomb)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "“IMG_6666.jpg” is damaged: the file is far too small for the 14000 × 14000 pixels it "
        "claims."
    )
    assert not LogEntryMedia.objects.exists()


def test_one_photo_decode_stays_within_its_memory_budget(tmp_path, phone_200mp_jpeg):
    """Measured in a fresh process: a 200 MP JPEG would take 800 MB decoded in full."""
    accepted = peak_memory_of_cleaning(phone_200mp_jpeg)
    assert accepted["outcome"].startswith("accepted"), accepted
    assert accepted["peak_growth_mb"] < 150, accepted
    bomb = peak_memory_of_cleaning(bomb_jpeg(tmp_path / "bomb.jpg"))
    assert bomb["outcome"].startswith("refused"), bomb
    assert bomb["peak_growth_mb"] < 20, bomb


# --- real formats -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("real_format", ["GIF", "TIFF"])
def test_a_gif_or_tiff_named_jpg_is_refused_for_what_it_is(
    maintainer_client, machine, tmp_path, real_format
):
    named_jpg = tmp_path / "IMG_0008.jpg"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(named_jpg, real_format)
    response = attach(maintainer_client, machine, named_jpg)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"“IMG_0008.jpg” is a {real_format} image, not a photo format we accept. "
        "Photos: JPEG, PNG, WebP or HEIC."
    )
    assert not LogEntryMedia.objects.exists()


def test_a_huge_heic_or_webp_file_is_refused_before_it_is_read_into_memory(settings):
    settings.PHOTO_MAX_READ_BYTES = 1024 * 1024
    fake_heic = SimpleUploadedFile(
        "IMG_0009.HEIC", b"\0\0\0\x18ftypheic" + b"\0" * (2 * 1024 * 1024), "image/heic"
    )
    with pytest.raises(UploadRejected, match="larger than 1 MB, more than a phone's HEIC"):
        photos.clean_photo(fake_heic)


# --- how many at once -----------------------------------------------------------------------------


def test_a_photo_waits_for_a_decode_slot_and_is_told_to_retry_when_none_frees(
    settings, monkeypatch, tmp_path
):
    settings.PHOTO_DECODE_WAIT_SECONDS = 0.2
    monkeypatch.setattr(photos, "_decode_slots", threading.BoundedSemaphore(1))
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (1, 2, 3)).save(buffer, "JPEG")
    small = SimpleUploadedFile("IMG_0010.jpg", buffer.getvalue(), "image/jpeg")
    photos._decode_slots.acquire()  # another request is decoding a photo
    try:
        with pytest.raises(UploadRejected) as refused:
            photos.clean_photo(small)
    finally:
        photos._decode_slots.release()
    assert refused.value.status == 503
    assert "busy with other photos" in str(refused.value)
    assert photos.clean_photo(small).size > 0  # the slot is free again
