"""Serving stored media with HTTP Range support.

iOS Safari refuses to play a video whose server does not answer ``Range`` requests with
``206 Partial Content``; every browser uses ranges to seek. Django's own static ``serve`` view
does not do ranges, so this small one does: a single byte range per request, which is all
media players ask for.
"""

import mimetypes
import os
import posixpath
import re
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.http import http_date
from django.views.decorators.http import require_GET

from the_flip.apps.accounts.decorators import maintainer_required
from the_flip.storage import is_bucket, signed_url

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _file_chunks(path: Path, start: int, length: int):
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


SERVED_FOLDERS = {"videos", "posters", "photos"}


@require_GET
@maintainer_required
def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    if is_bucket():
        return _redirect_to_bucket(path)
    root = Path(settings.MEDIA_ROOT).resolve()
    file_path = (root / path).resolve()
    # Only finished outputs are served: never the originals or the worker's temp files.
    if (
        not file_path.is_relative_to(root)
        or not file_path.is_file()
        or file_path.relative_to(root).parts[0] not in SERVED_FOLDERS
    ):
        raise Http404("No such file")
    size = file_path.stat().st_size
    content_type = CONTENT_TYPES.get(file_path.suffix.lower()) or (
        mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
    )
    mtime = http_date(os.path.getmtime(file_path))

    match = RANGE_RE.match(request.headers.get("Range", "").strip())
    if_range = request.headers.get("If-Range")
    if match and (not if_range or if_range == mtime):
        first, last = match.groups()
        if first == "" and last == "":
            match = None
        elif first == "":  # "bytes=-500": the last 500 bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if match:
            if start >= size or start > end:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{size}"
                return _common_headers(response, mtime)
            length = end - start + 1
            response = StreamingHttpResponse(
                _file_chunks(file_path, start, length), status=206, content_type=content_type
            )
            response["Content-Length"] = str(length)
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            return _common_headers(response, mtime)

    response = FileResponse(file_path.open("rb"), content_type=content_type)
    response["Content-Length"] = str(size)
    return _common_headers(response, mtime)


def _redirect_to_bucket(name: str) -> HttpResponse:
    """Media in a bucket: after the login check, send the browser to a short-lived signed
    URL, so video bytes never pass through gunicorn and Range requests go to the bucket
    (which answers 206 with the object's Content-Type). The redirect may be cached for a
    fraction of the URL's lifetime, so a player re-fetching ranges never holds an expired
    one."""
    parts = PurePosixPath(name).parts
    if (
        not parts
        or parts[0] not in SERVED_FOLDERS
        or ".." in parts
        or name != posixpath.normpath(name)
    ):
        raise Http404("No such file")
    response = HttpResponseRedirect(signed_url(name))
    response["Cache-Control"] = f"private, max-age={settings.MEDIA_URL_EXPIRY_SECONDS // 4}"
    return response


def _common_headers(response: HttpResponse, mtime: str) -> HttpResponse:
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = mtime
    response["X-Content-Type-Options"] = "nosniff"
    # Names are random and files never change once written.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
