"""Serving stored media to logged-in maintainers, with HTTP Range support.

iOS Safari refuses to play a video whose server does not answer ``Range`` requests with
``206 Partial Content``; every browser uses ranges to seek. Django's own static ``serve`` view
does not do ranges, so this small one does: one byte range per request (all media players ask
for), ``HEAD``, and ``If-Modified-Since``. Files are read through the storage API only.
"""

import mimetypes
import re
from pathlib import PurePosixPath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from the_flip.apps.accounts.decorators import maintainer_required

# Only finished outputs are served: never the originals or the worker's temp files.
SERVED_FOLDERS = {"videos", "posters", "photos"}
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
CHUNK = 256 * 1024

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
    served folders, climbing out with "..", or carrying a NUL or a backslash."""
    if "\x00" in path or "\\" in path:
        return None
    parts = PurePosixPath(path).parts
    if len(parts) < 2 or parts[0] not in SERVED_FOLDERS or {"..", "."} & set(parts):
        return None
    return "/".join(parts)


@require_safe
@maintainer_required
def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    name = servable_name(path)
    storage = default_storage
    try:
        if name is None or not storage.exists(name):
            raise Http404("No such file")
    except (SuspiciousFileOperation, ValueError, OSError) as refused:
        raise Http404("No such file") from refused
    return stored_file_response(request, storage, name)


def stored_file_response(request: HttpRequest, storage: Storage, name: str) -> HttpResponse:
    """Answer GET/HEAD for one stored file: 304, 206 with the range, 416, or 200 whole."""
    size = storage.size(name)
    modified = int(storage.get_modified_time(name).timestamp())
    last_modified = http_date(modified)
    content_type = CONTENT_TYPES.get(PurePosixPath(name).suffix.lower()) or (
        mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
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
        response = StreamingHttpResponse(
            _chunks(storage, name, start, length), status=206, content_type=content_type
        )
    else:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["Content-Length"] = str(length)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _common_headers(response, last_modified)


def _chunks(storage: Storage, name: str, start: int, length: int):
    with storage.open(name, "rb") as handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


def _common_headers(response: HttpResponse, last_modified: str) -> HttpResponse:
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = last_modified
    response["X-Content-Type-Options"] = "nosniff"
    # Names are random and files never change once written.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
