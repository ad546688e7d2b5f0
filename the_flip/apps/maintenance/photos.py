"""Photos are cleaned at upload: decoded (which proves they are images), turned upright from
their EXIF orientation, capped in size and re-encoded as JPEG. Re-encoding also drops the EXIF
block, so no GPS location leaves the phone for the web page."""

import io

import pillow_heif
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from .uploads import UploadRejected

pillow_heif.register_heif_opener()
# A 48 MP phone photo is about 48 million pixels; anything far beyond is a decompression bomb.
Image.MAX_IMAGE_PIXELS = 120_000_000


def clean_photo(upload) -> ContentFile:
    """Return the photo as an upright JPEG no larger than PHOTO_MAX_LONG_SIDE."""
    name = upload.name
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            limit = settings.PHOTO_MAX_LONG_SIDE
            image.thumbnail((limit, limit), Image.Resampling.LANCZOS)
            image = _flatten(image)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    except Image.DecompressionBombError as error:
        raise UploadRejected(f"“{name}” has too many pixels to be a phone photo.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UploadRejected(
            f"“{name}” is not a photo we can read. It may be damaged or not really an image."
        ) from error
    return ContentFile(buffer.getvalue(), name="photo.jpg")


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no transparency and needs RGB: put transparent pixels on white."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image
