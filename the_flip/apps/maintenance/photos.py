"""Photos are cleaned at upload: decoded (which proves they are images), turned upright from
their EXIF orientation, capped in size and re-encoded as JPEG. Re-encoding also drops the EXIF
block, so no GPS location leaves the phone for the web page.

Decoding is the one thing in the web process whose memory an upload decides, so it is bounded
*before* any pixel is decoded (a 5 KB JPEG can claim 14000 x 14000 pixels: 780 MB decoded):

* Only JPEG, PNG, WebP and HEIC/HEIF are opened (``Image.open(formats=...)``); the real format
  decides, not the file name, so a GIF or TIFF named ``.jpg`` is refused with a sentence.
* A JPEG smaller than one bit per 8 x 8 block of the size its header claims is refused as
  damaged: it cannot hold that picture (the 5 KB "14000 x 14000" bomb).
* ``image.size`` is read from the header right after ``open``. What the decoder must hold is
  compared with ``PHOTO_MAX_PIXELS`` (50 MP: a 48 MP iPhone "HEIF Max" or a 50 MP Android
  photo passes) before ``load()``:
  - a baseline JPEG is decoded already scaled down by libjpeg's DCT scaling (``draft``: 1/2,
    1/4 or 1/8, the smallest that still gives >= 2400 px), so only the scaled size counts and
    a 200 MP phone JPEG (16320 x 12240) is decoded at 4080 x 3060 and accepted;
  - a progressive JPEG keeps every coefficient of the full image while it decodes, so its
    full size counts;
  - HEIC/HEIF is decoded by libheif into one RGB buffer and then reduced strip by strip into
    a Pillow image (never a second full-size copy);
  - PNG and WebP are decoded in full, then reduced by a whole factor before resampling.
* At most ``PHOTO_DECODES`` photos decode at once per web process (a semaphore; sized from
  the memory budget by ``the_flip.sizing``); a request that waits ``PHOTO_DECODE_WAIT_SECONDS``
  for its turn is told to try again (503) instead of piling up memory.

Peak memory of one photo (``bench/photo_memory.py``, maximum RSS growth of a fresh process,
Pillow 12, libheif 1.20; docs/security.md "Photos"): a 50 MP PNG 268 MB, a 48 MP HEIC 232 MB,
a 48 MP progressive JPEG 219 MB, a 200 MP baseline JPEG 82 MB, a 12 MP phone JPEG 47 MB.
"""

from __future__ import annotations

import io
import math
import os
import threading

import pillow_heif
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from .uploads import PHOTO_FORMATS, UploadRejected

pillow_heif.register_heif_opener()
# libjpeg's own cap on its big buffers (read at every decode): a progressive or multi-scan JPEG
# keeps all its coefficients (3 bytes a pixel at 4:2:0); anything beyond the pixel budget's
# worth fails to decode instead of growing the process.
os.environ.setdefault("JPEGMEM", f"{settings.PHOTO_MAX_PIXELS * 3 // 1_000_000 + 10}M")
# Pillow's own bomb check stays as a backstop far above ours (which runs first): ours counts
# what the decoder really holds, Pillow's only the header (and would refuse a 200 MP JPEG).
Image.MAX_IMAGE_PIXELS = 300_000_000

# The real formats we accept, as Pillow names them (pillow_heif registers HEIC as "HEIF").
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
*_most, _last = PHOTO_FORMATS  # the names a maintainer reads, from the one list of them
ACCEPTED_WORDS = f"{', '.join(_most)} or {_last}"
# A camera JPEG with a second picture (depth map, preview) opens as Pillow's "MPO".
JPEG_FORMATS = ("JPEG", "MPO")
# A strip of this many reduced rows at a time when shrinking a decoded HEIC.
STRIP_ROWS = 64

_decode_slots = threading.BoundedSemaphore(settings.PHOTO_DECODES)


def clean_photo(upload) -> ContentFile:
    """Return the photo as an upright JPEG no larger than PHOTO_MAX_LONG_SIDE."""
    name = upload.name
    if not _decode_slots.acquire(timeout=settings.PHOTO_DECODE_WAIT_SECONDS):
        raise UploadRejected(
            f"The server is busy with other photos; “{name}” was not saved. Try again in a minute.",
            status=503,
        )
    try:
        return _clean(upload, name)
    finally:
        _decode_slots.release()


def _clean(upload, name: str) -> ContentFile:
    limit = settings.PHOTO_MAX_LONG_SIDE
    check_read_whole_size(upload, name)
    try:
        upload.seek(0)
        with Image.open(upload, formats=ACCEPTED_FORMATS) as opened:
            check_decode_size(opened, name, limit, upload.size)
            image = _decode_reduced(opened, upload, limit)
        image.thumbnail((limit, limit), Image.Resampling.LANCZOS, reducing_gap=None)
        ImageOps.exif_transpose(image, in_place=True)
        image = _flatten(image)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    except UnidentifiedImageError as error:
        raise UploadRejected(_not_accepted_message(upload, name)) from error
    except Image.DecompressionBombError as error:
        raise UploadRejected(too_many_pixels_message(name)) from error
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as error:
        raise UploadRejected(
            f"“{name}” is not a photo we can read. It may be damaged or not really an image."
        ) from error
    return ContentFile(buffer.getvalue(), name="photo.jpg")


def too_many_pixels_message(name: str) -> str:
    megapixels = settings.PHOTO_MAX_PIXELS // 1_000_000
    return (
        f"“{name}” has too many pixels to be a phone photo: we accept up to {megapixels} "
        "megapixels (any size for a regular JPEG)."
    )


def decoded_pixels(image: Image.Image, limit: int) -> int:
    """Pixels the decoder must hold for this opened (not yet loaded) image.

    A baseline JPEG is decoded scaled down (``draft``) to the smallest of 1/1, 1/2, 1/4, 1/8
    that still covers ``limit`` on the long side, so only that counts; anything else
    (progressive JPEG, HEIC, PNG, WebP) holds its full size at some point.
    """
    width, height = image.size
    if image.format in JPEG_FORMATS and not image.info.get("progressive"):
        scale = _jpeg_scale(width, height, limit)
        return math.ceil(width / scale) * math.ceil(height / scale)
    return width * height


def check_read_whole_size(upload, name: str) -> None:
    """HEIC and WebP files are read into memory whole when opened: refuse a huge one first.

    Recognised by their first 12 bytes (an ISO media ``ftyp`` box, or ``RIFF....WEBP``).
    """
    upload.seek(0)
    head = upload.read(12)
    read_whole = head[4:8] == b"ftyp" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if read_whole and (upload.size or 0) > settings.PHOTO_MAX_READ_BYTES:
        megabytes = settings.PHOTO_MAX_READ_BYTES // (1024 * 1024)
        raise UploadRejected(
            f"“{name}” is larger than {megabytes} MB, more than a phone's HEIC or WebP photo."
        )


def check_decode_size(image: Image.Image, name: str, limit: int, file_size: int | None) -> None:
    """Refuse, from the header alone, a photo whose decode would exceed PHOTO_MAX_PIXELS, or a
    JPEG too small to hold the picture its header claims."""
    if image.width < 1 or image.height < 1:
        raise UploadRejected(f"“{name}” is not a photo we can read. It has no pixels.")
    too_small = file_size is not None and file_size < image.width * image.height // 512
    if image.format in JPEG_FORMATS and too_small:
        # Every 8x8 block costs at least one bit, even in a progressive scan: a smaller file is
        # cut off or forged (libjpeg would paint the missing part grey, at full cost).
        raise UploadRejected(
            f"“{name}” is damaged: the file is far too small for the "
            f"{image.width} × {image.height} pixels it claims."
        )
    if decoded_pixels(image, limit) > settings.PHOTO_MAX_PIXELS:
        raise UploadRejected(too_many_pixels_message(name))


def _target_size(width: int, height: int, limit: int) -> tuple[int, int]:
    """The size of the stored photo: long side at most ``limit``, never upscaled."""
    ratio = min(1.0, limit / max(width, height))
    return max(1, math.ceil(width * ratio)), max(1, math.ceil(height * ratio))


def _jpeg_scale(width: int, height: int, limit: int) -> int:
    """The DCT scale ``draft`` picks for a target of ``_target_size`` (Pillow's own rule)."""
    target_w, target_h = _target_size(width, height, limit)
    scale = min(width // target_w, height // target_h)
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def _decode_reduced(image: Image.Image, upload, limit: int) -> Image.Image:
    """Decode ``image`` at a size from which LANCZOS makes the final photo, holding as little
    as possible: a whole factor above ``limit`` at most (like Pillow's ``reduce``)."""
    width, height = image.size
    if image.format in JPEG_FORMATS:
        image.draft("RGB", _target_size(width, height, limit))
    elif image.format == "HEIF":
        factor = max(width, height) // limit
        if factor >= 2:
            return _heif_reduced(upload, factor)
    image.load()
    factor = max(image.size) // limit
    if factor >= 2:
        reduced = image.reduce(factor)
        reduced.info = image.info  # the EXIF orientation comes along
        return reduced
    return image


def _heif_reduced(upload, factor: int) -> Image.Image:
    """A HEIC decoded by libheif (one RGB buffer) and reduced by ``factor`` in strips.

    Pillow's HEIF plugin would copy the whole buffer into a full-size Pillow image (4 bytes a
    pixel, 195 MB for 48 MP) next to libheif's own (146 MB); strips keep only the reduced one.
    libheif has already applied the file's rotation and mirroring, so no EXIF orientation is
    carried over.
    """
    upload.seek(0)
    heif = pillow_heif.open_heif(upload, convert_hdr_to_8bit=True)
    width, height = heif.size
    mode, stride = heif.mode, heif.stride
    data = memoryview(heif.data)
    reduced = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    rows = factor * STRIP_ROWS
    for top in range(0, height, rows):
        count = min(rows, height - top)
        strip = Image.frombuffer(
            mode, (width, count), data[top * stride : (top + count) * stride], "raw", mode,
            stride, 1,
        )  # fmt: skip
        reduced.paste(strip.reduce(factor), (0, top // factor))
    data.release()
    return reduced


def _not_accepted_message(upload, name: str) -> str:
    """Name what the file really is, when Pillow knows it (header only, nothing decoded)."""
    try:
        upload.seek(0)
        with Image.open(upload) as anything:
            kind = anything.format or "other"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return f"“{name}” is not a photo we can read. It may be damaged or not really an image."
    article = "an" if kind[0] in "AEIOU" else "a"
    return (
        f"“{name}” is {article} {kind} image, not a photo format we accept. "
        f"Photos: {ACCEPTED_WORDS}."
    )


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no transparency and needs RGB: put transparent pixels on white."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image
