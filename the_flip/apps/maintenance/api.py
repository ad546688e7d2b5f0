"""The JSON API of the contract: machines, log entries, media.

Every endpoint is wrapped by ``api_view``, which marks it for ApiAuthMiddleware (login is
checked *before* CSRF and before any upload byte is read) and turns refusals into
``{"error": "..."}`` answers.
"""

import functools
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import defaults
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.http import require_http_methods

from the_flip.apps.catalog.models import Machine
from the_flip.storage import STORE_ERRORS

from . import attachments, idempotency
from .models import LogEntry, LogEntryMedia
from .request_limits import takes_uploads
from .uploads import (
    MAX_FILES_PER_REQUEST,
    UploadRejected,
    max_upload_mb,
    too_large_message,
    too_many_files_message,
)

log = logging.getLogger(__name__)


def error(message: str, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 413:
        response["Connection"] = "close"  # we did not read the rest of the body
    return response


# What Django raises while it reads a request body it will not take.
UNREADABLE_BODY = (MultiPartParserError, SuspiciousOperation, BadRequest)
# The bucket did not answer while we stored an upload (the entry was not saved).
STORE_UNAVAILABLE = "The file store did not answer, so nothing was saved. Try again in a minute."


def unreadable_body(problem: Exception) -> JsonResponse:
    """The JSON answer for a body Django refused to parse (too big, too many parts, broken)."""
    if isinstance(problem, RequestDataTooBig):
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return error(
            f"The request is too large: text fields and JSON bodies may be at most "
            f"{limit_mb} MB (files up to {max_upload_mb()} MB each go in file fields).",
            413,
        )
    if isinstance(problem, TooManyFilesSent):
        return error(too_many_files_message())
    if isinstance(problem, TooManyFieldsSent):
        return error("The request has too many fields; send only the ones the API names.")
    if isinstance(problem, MultiPartParserError) and "header size" in str(problem):
        return error("A file name is too long: keep file names under 255 characters.")
    if isinstance(problem, MultiPartParserError):
        return error("The upload could not be read: the multipart body is malformed.")
    return error("The request was refused: it is malformed.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a body refused before the view ran (the CSRF check reads the form first)
    answers JSON on the API, Django's page elsewhere."""
    if request.path.startswith("/api/") and exception is not None:
        return unreadable_body(exception)
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: an unknown /api/ URL answers JSON too."""
    if request.path.startswith("/api/"):
        return error("There is no such API endpoint.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a crash in the API still answers the contract's shape (the traceback goes
    to the log and Sentry)."""
    if request.path.startswith("/api/"):
        return error("Something went wrong on the server (it has been logged). Try again.", 500)
    return defaults.server_error(request)


def api_view(methods: list[str], max_files: int | None = None) -> Callable:
    """Mark a view as a JSON API endpoint that takes at most ``max_files`` uploads."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if getattr(request, "upload_too_large", False):
                    return error(too_large_message(), 413)
                response = view(request, *args, **kwargs)
                if getattr(request, "upload_too_large", False):
                    return error(too_large_message(), 413)
                return response
            except UploadRejected as rejected:
                return error(str(rejected), rejected.status)
            except Http404:
                return error("There is nothing here (it may have been deleted).", 404)
            except UNREADABLE_BODY as problem:  # read in the view (JSON bodies, files)
                return unreadable_body(problem)
            except STORE_ERRORS:  # the bucket did not answer: the transaction rolled back
                log.warning("file store unavailable during %s %s", request.method, request.path,
                            exc_info=True)  # fmt: skip
                response = error(STORE_UNAVAILABLE, 503)
                response["Retry-After"] = "60"
                return response

        wrapper.is_api_view = True
        takes_uploads(max_files or 0)(wrapper)  # the body it may take
        return require_http_methods(methods)(wrapper)

    return decorator


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF refusals are JSON on the API, Django's page elsewhere."""
    if getattr(request, "upload_too_large", False):
        # The body was not read, so the form's token never arrived: the size is the real issue.
        return error(too_large_message(), 413)
    if request.path.startswith("/api/"):
        return error(
            "The request was refused (CSRF check failed). Send the csrftoken cookie's value "
            "in the X-CSRFToken header.",
            403,
        )
    return html_csrf_failure(request, reason)


def _request_data(request: HttpRequest) -> dict:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as bad_json:
            raise UploadRejected("The request body is not valid JSON.") from bad_json
        if not isinstance(data, dict):
            raise UploadRejected("Send a JSON object.")
        return data
    return request.POST


@api_view(["GET", "POST"], max_files=0)
def machines(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse([m.as_json() for m in Machine.objects.all()], safe=False)
    name = str(_request_data(request).get("name", "")).strip()
    problem = Machine.name_problem(name)
    if problem:
        return error(problem)
    return JsonResponse(Machine.objects.create(name=name).as_json(), status=201)


@api_view(["POST"], max_files=MAX_FILES_PER_REQUEST)
def create_log_entry(request: HttpRequest) -> JsonResponse:
    machine_id = request.POST.get("machine", "")
    machine = Machine.objects.filter(pk=machine_id).first() if machine_id.isdigit() else None
    if machine is None:
        return error("Choose the machine this work was done on (field “machine”).")
    uploads = request.FILES.getlist("media")
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > idempotency.MAX_KEY_LENGTH:
        return error("The Idempotency-Key header is longer than 255 characters.")
    entry, media, created = idempotency.create_entry_once(
        machine=machine,
        author=request.user,
        text=request.POST.get("text", ""),
        uploads=uploads,
        key=key,
    )
    return _entry_json(entry, media, status=201 if created else 200)


def _entry_json(entry: LogEntry, media: list[LogEntryMedia], status: int) -> JsonResponse:
    return JsonResponse(
        {
            "id": entry.pk,
            "page_url": entry.get_absolute_url(),
            "uploads_url": reverse("api-uploads", args=[entry.pk]),  # tus: more files, resumable
            "media": [m.as_json() for m in media],
        },
        status=status,
    )


@api_view(["POST"], max_files=1)
def add_media(request: HttpRequest, entry_id: int) -> JsonResponse:
    entry = get_object_or_404(LogEntry, pk=entry_id)
    upload = request.FILES.get("file")
    if upload is None:
        return error("Attach a photo or video in the field “file”.")
    media = attachments.attach(entry, upload)
    return JsonResponse(media.as_json(), status=201)


@api_view(["GET", "DELETE"], max_files=0)
def media_detail(request: HttpRequest, media_id: int) -> JsonResponse:
    media = get_object_or_404(LogEntryMedia, pk=media_id)
    if request.method == "DELETE":
        media.delete()
        return JsonResponse({"deleted": media_id})
    return JsonResponse(media.as_json())


@api_view(["GET"], max_files=0)
def media_tile(request: HttpRequest, media_id: int) -> HttpResponse:
    """The media's tile as the page shows it (HTML): uploader.js swaps it in while it follows
    an upload, so a tile is only ever rendered by _media_tile.html."""
    media = get_object_or_404(LogEntryMedia, pk=media_id)
    return render(request, "maintenance/_media_tile.html", {"media": media})


@api_view(["POST"], max_files=0)
def retry_media(request: HttpRequest, media_id: int) -> JsonResponse:
    media = get_object_or_404(LogEntryMedia, pk=media_id)
    if not attachments.retry(media):
        return error("Only a failed video whose original is still here can be tried again.", 409)
    return JsonResponse(media.as_json())
