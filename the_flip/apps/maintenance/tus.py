"""Resumable uploads: the tus 1.0.0 protocol (core, creation, termination, expiration).

A phone on museum Wi-Fi sends a file as a series of PATCH requests of a few MB each; when the
connection drops it asks (HEAD) how much arrived and goes on from there. The finished file
goes through the same validate → store → enqueue path as a multipart upload
(``attachments.attach``), so there is one way in for media.

Why our own code and not a library: the Django candidates do not fit. ``drf-tus`` needs
Django REST framework and django-fsm, two frameworks for four small views; ``django-tus``
has been unmaintained since its Django 3.x days and keeps each upload's state in Django's
cache (lost on restart, not shared between machines without Redis, which we do not run) and
its bytes in a local folder (no bucket). ``resumable-upload`` is a stdlib server with its own
SQLite store, outside Django's auth, CSRF and storage. What we need is small: a row per upload
(``PartialUpload``: the database is already shared by every web process), one storage object
per PATCH (so a bucket works as the disk does), and a conditional UPDATE to make concurrent
PATCHes safe. That is the ~200 lines below, and tuspy (an independent client) checks them in
tests/test_resumable_uploads.py.

How a PATCH stays honest: the chunk is read into a scratch file, stored as its own object,
and only then does the row's offset move (in one UPDATE guarded by the writer's claim token).
A body cut off mid-way (the client dropped) keeps what arrived; either way HEAD reports
exactly what is stored. A PATCH stops reading after TUS_PATCH_READ_SECONDS and keeps what it
has, so no request holds a web thread for long. (Behind nginx, which buffers each request
whole, a cut chunk never reaches us at all: the upload simply stays at the previous offset.)

Types are judged twice: at creation from Upload-Metadata and Upload-Length (the multipart
whitelist and cap, uploads.classify), so a wrong file costs no bytes; and at completion on the
assembled file, by the same attachments.check every upload gets (a photo is decoded there, a
video is probed by the worker).
"""

import base64
import binascii
import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date

from . import attachments
from .api import api_view, error
from .models import LogEntry, PartialUpload
from .request_limits import declared_length
from .uploads import UploadRejected, classify, too_large_message

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
CHUNK_CONTENT_TYPE = "application/offset+octet-stream"
READ_BLOCK = 256 * 1024


def tus_view(methods: list[str], max_files: int = 0):
    """An API view (login, CSRF, JSON errors) whose every answer says Tus-Resumable; the
    middleware adds it to refusals made before the view runs (see ApiAuthMiddleware).
    ``max_files=1``: its PATCH bodies may be as large as one file (request_limits.py)."""

    def decorator(view):
        wrapped = api_view(methods, max_files=max_files)(view)
        wrapped.speaks_tus = True
        return wrapped

    return decorator


def _answer(status: int = 204, **headers: str) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _refuse(message: str, status: int, **headers: str) -> JsonResponse:
    response = error(message, status)
    response["Tus-Resumable"] = TUS_VERSION
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _protocol_problem(request: HttpRequest) -> JsonResponse | None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        return _refuse(
            f"This server speaks tus {TUS_VERSION}: send the header Tus-Resumable: {TUS_VERSION}.",
            412,
            Tus_Version=TUS_VERSION,
        )
    return None


def _non_negative_int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs (a key may stand alone)."""
    metadata = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as bad:
            raise UploadRejected(
                f"The Upload-Metadata value of “{key}” is not base64-encoded UTF-8."
            ) from bad
    return metadata


def _headers_of(upload: PartialUpload) -> dict[str, str]:
    headers = {
        "Upload_Offset": str(upload.offset),
        "Upload_Length": str(upload.length),
        "Upload_Expires": http_date(upload.expires_at.timestamp()),
    }
    if upload.is_complete:
        headers["Media_Location"] = reverse("api-media-detail", args=[upload.media_id])
    return headers


# --- Creation ---------------------------------------------------------------------------


@tus_view(["OPTIONS", "POST"])
def uploads(request: HttpRequest, entry_id: int) -> HttpResponse:
    """OPTIONS: what this server supports. POST: a new upload for the log entry."""
    if request.method == "OPTIONS":
        return _answer(
            Tus_Version=TUS_VERSION,
            Tus_Extension=TUS_EXTENSIONS,
            Tus_Max_Size=str(settings.MAX_UPLOAD_BYTES),
        )
    if problem := _protocol_problem(request):
        return problem
    entry = get_object_or_404(LogEntry, pk=entry_id)
    length = _non_negative_int(request.headers.get("Upload-Length"))
    if length is None:
        return _refuse("Say how big the file is in the header Upload-Length (bytes).", 400)
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    filename = metadata.get("filename", "").strip()
    if not filename:
        if length > settings.MAX_UPLOAD_BYTES:
            return _refuse(too_large_message(), 413)
        return _refuse("Say the file's name in Upload-Metadata (key “filename”).", 400)
    filetype = metadata.get("filetype", "")
    # The same whitelist and cap as a multipart upload, judged before a byte is stored.
    classify(UploadedFile(name=filename, content_type=filetype, size=length))
    upload = PartialUpload.objects.create(
        log_entry=entry,
        owner=request.user,
        filename=filename[:255],
        filetype=filetype[:255],
        length=length,
        expires_at=PartialUpload.expiry_from(timezone.now()),
    )
    return _answer(201, Location=upload.get_location(), **_headers_of(upload))


# --- One upload: HEAD, PATCH, DELETE ----------------------------------------------------


@tus_view(["OPTIONS", "HEAD", "PATCH", "DELETE"], max_files=1)
def upload_detail(request: HttpRequest, entry_id: int, upload_id) -> HttpResponse:
    if request.method == "OPTIONS":
        return uploads(request, entry_id)
    if problem := _protocol_problem(request):
        return problem
    upload = get_object_or_404(
        PartialUpload, pk=upload_id, log_entry_id=entry_id, owner=request.user
    )
    if upload.is_expired and not upload.is_complete:
        return _refuse("This upload expired. Start it again.", 410)
    if request.method == "HEAD":
        return _answer(200, Upload_Metadata=_metadata_header(upload), **_headers_of(upload))
    if request.method == "DELETE":
        upload.delete()  # its bytes go with it (post_delete)
        return _answer(204)
    return _patch(request, upload)


def _metadata_header(upload: PartialUpload) -> str:
    pairs = {"filename": upload.filename, "filetype": upload.filetype}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def _patch(request: HttpRequest, upload: PartialUpload) -> HttpResponse:
    if request.content_type != CHUNK_CONTENT_TYPE:
        return _refuse(f"Send the chunk with Content-Type: {CHUNK_CONTENT_TYPE}.", 415)
    offset = _non_negative_int(request.headers.get("Upload-Offset"))
    if offset is None:
        return _refuse("Say where this chunk starts in the header Upload-Offset.", 400)
    declared = declared_length(request.META)
    if declared is None:
        return _refuse("Send the chunk with a Content-Length.", 411)
    if upload.is_complete:
        if offset == upload.length and declared == 0:
            return _answer(204, **_headers_of(upload))  # a retry of the completing PATCH
        return _refuse("This upload is already complete.", 409, **_headers_of(upload))
    if offset != upload.offset:
        return _offset_mismatch(upload)
    if offset + declared > upload.length:
        return _refuse(
            f"This chunk would go past the end of the file: {upload.length - offset} bytes "
            f"are left from offset {offset}, the chunk has {declared}.",
            413,
        )
    token = upload.claim_at(offset)
    if token is None:
        upload.refresh_from_db()
        if upload.offset != offset:
            return _offset_mismatch(upload)
        return _refuse(
            "Another request is writing to this upload right now. Ask for its offset (HEAD) "
            "and try again in a moment.",
            423,
        )
    try:
        if declared:
            _store_chunk(request, upload, token, declared)
        if upload.all_bytes_stored:
            return _complete(upload, token)
    except BaseException:
        upload.release(token)
        raise
    # After a short read gunicorn itself drains (or drops) the rest of the body.
    return _answer(204, **_headers_of(upload))


def _offset_mismatch(upload: PartialUpload) -> JsonResponse:
    return _refuse(
        f"This chunk does not start where the upload stands ({upload.offset} bytes stored). "
        "Ask for the offset (HEAD) and go on from there.",
        409,
        Upload_Offset=str(upload.offset),
    )


def _store_chunk(request: HttpRequest, upload: PartialUpload, token: str, declared: int) -> None:
    """Read up to ``declared`` bytes (less if the client drops or the read deadline passes),
    store them as one object, then record them."""
    scratch_dir = Path(settings.FILE_UPLOAD_TEMP_DIR)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + settings.TUS_PATCH_READ_SECONDS
    # A phone that stops sending without hanging up would block a read forever: under
    # gunicorn, each read may wait only until the deadline (gunicorn resets the socket after
    # the request). Behind nginx bodies arrive whole and this never triggers.
    client_socket = request.META.get("gunicorn.socket")
    with tempfile.NamedTemporaryFile(dir=scratch_dir, prefix="tus-", suffix=".chunk") as scratch:
        received = 0
        while received < declared and (left := deadline - time.monotonic()) > 0:
            try:
                if client_socket is not None:
                    client_socket.settimeout(left)
                block = request.read(min(READ_BLOCK, declared - received))
            except OSError:  # UnreadablePostError, a timeout: the client went away or stalled
                break
            if not block:
                break
            scratch.write(block)
            received += len(block)
        if received < declared:
            log.info(
                "upload %s: PATCH at %d cut short: %d of %d bytes arrived; keeping them",
                upload.pk, upload.offset, received, declared,
            )  # fmt: skip
        if received == 0:
            upload.release(token)
            return
        scratch.flush()
        scratch.seek(0)
        name = default_storage.save(upload.chunk_name(upload.offset, token), File(scratch))
    if not upload.record_chunk(token, name, received):
        default_storage.delete(name)  # our claim was taken over: the other writer's turn
        raise UploadRejected("Another request took over this upload. Ask for its offset.", 409)


def _complete(upload: PartialUpload, token: str) -> HttpResponse:
    """The last byte is stored: assemble, validate and attach like any upload, then drop the
    chunks. A refused file is discarded with its bytes (400)."""
    assembled = _assemble(upload)
    try:
        try:
            with transaction.atomic():
                media = attachments.attach(upload.log_entry, assembled)
                if not upload.release(token, media=media):
                    # Our claim went stale and another PATCH finished it: roll our row back
                    # (its stored copy is left to the orphaned-files chore).
                    raise UploadRejected("Another request finished this upload already.", 409)
        except UploadRejected as rejected:
            if rejected.status != 409:
                upload.delete()  # discarded, bytes and all
            return _refuse(str(rejected), rejected.status)
    finally:
        assembled.close()
    upload.media = media
    upload.delete_bytes()  # the media has its own copy now
    log.info("upload %s complete: media %s", upload.pk, media.pk)
    return _answer(204, **_headers_of(upload))


def _assemble(upload: PartialUpload) -> TemporaryUploadedFile:
    """The stored chunks, concatenated into one scratch file (a rename away from the disk
    storage; copied to a bucket) that looks like any uploaded file."""
    assembled = TemporaryUploadedFile(
        name=upload.filename, content_type=upload.filetype, size=upload.length, charset=None
    )
    for _, _, chunk in upload.open_chunks():
        with chunk:
            while block := chunk.read(1024 * 1024):
                assembled.write(block)
    assembled.flush()
    assembled.seek(0)
    return assembled
