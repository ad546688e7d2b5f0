"""Serving stored media to logged-in maintainers, with HTTP Range support.

iOS Safari refuses to play a video whose server does not answer ``Range`` requests with
``206 Partial Content``; every browser uses ranges to seek. Django's own static ``serve`` view
does not do ranges, so this small one does: one byte range per request (all media players ask
for), ``HEAD``, and ``If-Modified-Since``. Files are read through the storage API only.
With media in a bucket, the login is checked here and the bytes come from the bucket: a
redirect to a short-lived signed URL.
"""

import re
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from the_flip.apps.accounts.decorators import maintainer_required
from the_flip.storage import is_bucket, signed_url

from .models import SERVED_FOLDERS

# Only finished outputs are served (SERVED_FOLDERS: never the originals or the worker's temp
# files): MP4 videos, JPEG posters and photos.
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

# RFC 9110 §14.1.2: one range, "bytes=first-last", "bytes=first-" or "bytes=-suffix".
RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
# More digits than this is more bytes than any file has; int() is never asked to parse it
# (Python refuses strings over 4300 digits, which answered 500 before).
MAX_DIGITS = 18
HUGE = 10**MAX_DIGITS


class RangeNotSatisfiable(Exception):
    """A valid range that lies wholly past the end of the file (answer 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte positions (inclusive) a ``Range`` header asks of a file of
    ``size`` bytes, or None to serve the whole file: no header, another unit, several ranges,
    or an invalid one such as ``bytes=5-1``, which RFC 9110 lets a server ignore.
    Raises RangeNotSatisfiable when the range starts past the end (or asks for 0 bytes)."""
    match = RANGE_RE.match(header or "")
    if not match:
        return None
    first, last = (_position(digits) for digits in match.groups())
    if first is None and last is None:
        return None
    if first is None:  # "bytes=-500": the last 500 bytes
        if last == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return first, size - 1 if last is None else min(last, size - 1)


def _position(digits: str) -> int | None:
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return HUGE if len(digits) > MAX_DIGITS else int(digits)


def servable_name(path: str) -> str | None:
    """The stored name for a /media/ path, or None when it is never served: outside the
    served folders, not a file type we serve (a folder, say), climbing out with "..", or
    carrying a NUL or a backslash."""
    if "\x00" in path or "\\" in path:
        return None
    parts = PurePosixPath(path).parts
    if len(parts) < 2 or parts[0] not in SERVED_FOLDERS or {"..", "."} & set(parts):
        return None
    if PurePosixPath(path).suffix.lower() not in CONTENT_TYPES:
        return None
    return "/".join(parts)


@require_safe
@maintainer_required
def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    name = servable_name(path)
    if name is None:
        raise Http404("No such file")
    if is_bucket(default_storage):
        return redirect_to_bucket(name)
    return stored_file_response(request, default_storage, name)


def redirect_to_bucket(name: str) -> HttpResponse:
    """Media in a bucket: after the login check, send the browser to a short-lived signed
    URL, so video bytes never pass through gunicorn and Range requests go to the bucket
    (which answers 206 with the object's Content-Type). No HEAD first: the bucket answers
    404 itself. The redirect may be cached for a quarter of the URL's lifetime, so a player
    re-fetching ranges never holds an expired one."""
    response = HttpResponseRedirect(signed_url(name))
    response["Cache-Control"] = f"private, max-age={settings.MEDIA_URL_EXPIRY_SECONDS // 4}"
    return response


def stored_file_response(request: HttpRequest, storage: Storage, name: str) -> HttpResponse:
    """Answer GET/HEAD for one stored file: 304, 206 with the range, 416, or 200 whole."""
    try:
        handle = storage.open(name, "rb")  # also how a folder or a missing file shows itself
    except (OSError, SuspiciousFileOperation, ValueError) as missing:
        raise Http404("No such file") from missing
    try:
        response = _answer(request, storage, name, handle)
    except BaseException:
        handle.close()
        raise
    if not response.streaming:
        handle.close()  # 304, 416 and HEAD send no bytes of the file
    return response


def _answer(request: HttpRequest, storage: Storage, name: str, handle) -> HttpResponse:
    size = storage.size(name)
    modified = int(storage.get_modified_time(name).timestamp())
    last_modified = http_date(modified)
    content_type = CONTENT_TYPES[PurePosixPath(name).suffix.lower()]
    not_modified = get_conditional_response(request, last_modified=modified)
    if not_modified is not None:
        return _common_headers(not_modified, last_modified)

    byte_range = None
    if_range = request.headers.get("If-Range")
    if not if_range or if_range == last_modified:  # a changed file is sent whole
        try:
            byte_range = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return _common_headers(response, last_modified)

    start, end = byte_range or (0, size - 1)
    length = end - start + 1
    status = 206 if byte_range else 200
    if request.method == "HEAD":
        response = HttpResponse(status=status, content_type=content_type)
    elif byte_range:
        handle.seek(start)
        response = FileResponse(_Slice(handle, length), status=206, content_type=content_type)
        response.block_size = 256 * 1024
    else:  # the real file object: gunicorn sends it with sendfile()
        response = FileResponse(handle, content_type=content_type)
    response["Content-Length"] = str(length)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _common_headers(response, last_modified)


class _Slice:
    """At most ``length`` bytes of an open file from where it stands (FileResponse reads it
    in blocks and closes it when the answer is done)."""

    def __init__(self, handle, length: int):
        self.handle, self.left = handle, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size) if size else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


def _common_headers(response: HttpResponse, last_modified: str) -> HttpResponse:
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = last_modified
    response["X-Content-Type-Options"] = "nosniff"
    # Names are random and files never change once written.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
