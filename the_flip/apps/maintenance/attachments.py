"""Attaching photos and videos to a log entry: the one way in for every upload path.

validate (uploads.classify, then photos.clean_photo for a photo) → store through the storage
API → the LogEntryMedia row → ask for the transcode. The multipart API, the no-JavaScript page
form and the resumable (tus) upload all call ``attach`` or ``create_entry``; the page's and the
admin's Retry call ``retry``. Nothing else creates media rows or asks for a transcode.

Apps import one way: the worker imports maintenance, never the reverse. So this module never
touches huey: it sends ``transcode_requested`` (a Django signal defined here), and the worker
app connects the one function that enqueues (worker/tasks.py) in its ``AppConfig.ready()``;
that function queues the task once the row is committed. A signal rather than a setting naming
a function: the app that owns the queue wires itself in, nothing here names it, and a process
where nobody listens says so in the log instead of failing an upload (the every-minute reset
would still queue the video).
"""

import logging
from dataclasses import dataclass

from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.dispatch import Signal

from .models import LogEntry, LogEntryMedia
from .photos import clean_photo
from .uploads import check_file_count, classify

log = logging.getLogger(__name__)

# Sent with ``media_id`` when a video needs (another) transcode; the receiver queues it once
# the current transaction commits (never before: the worker would not find the row).
transcode_requested = Signal()


@dataclass(frozen=True)
class Checked:
    """An upload that passed validation: its kind and, for a photo, the cleaned JPEG to store."""

    kind: str
    cleaned_photo: ContentFile | None = None


def check(upload: File) -> Checked:
    """Validate one upload (raises uploads.UploadRejected with a sentence for the maintainer)."""
    kind = classify(upload)
    return Checked(kind, clean_photo(upload) if kind == LogEntryMedia.Kind.PHOTO else None)


def attach(entry: LogEntry, upload: File, checked: Checked | None = None) -> LogEntryMedia:
    """Validate (unless ``checked`` says it was), store and record ``upload`` on ``entry``.

    ``upload`` is any Django File with a name and a size (an UploadedFile from a form, or a
    File over an assembled tus upload). A photo is ready at once; a video is stored as it came
    and its transcode requested for when the row is committed.
    """
    checked = checked or check(upload)
    media = LogEntryMedia(
        log_entry=entry,
        kind=checked.kind,
        original_name=(upload.name or "")[:255],
        original_size=upload.size,
    )
    with transaction.atomic():
        if checked.cleaned_photo is not None:
            media.transcode_status = LogEntryMedia.Status.READY
            media.progress = 100
            media.file.save("photo.jpg", checked.cleaned_photo, save=False)
        else:
            media.file.save(upload.name or "video.mov", upload, save=False)
        media.save()
        if media.is_video:
            request_transcode(media)
    return media


def create_entry(
    *, machine, author, text: str, uploads: list[File], idempotency_key: str = ""
) -> tuple:
    """A new entry with its uploads. Every upload is validated first (and more than
    MAX_FILES_PER_REQUEST are refused, not cut), so one bad file means nothing is saved
    (raises uploads.UploadRejected). Returns (entry, media). An ``idempotency_key`` this
    author already used makes the entry's insert raise IntegrityError before any file is
    stored (api.create_log_entry then answers the first entry)."""
    check_file_count(uploads)
    checked = [(upload, check(upload)) for upload in uploads]
    with transaction.atomic():
        entry = LogEntry.objects.create(
            machine=machine, author=author, text=text, idempotency_key=idempotency_key
        )
        media = [attach(entry, upload, result) for upload, result in checked]
    return entry, media


def retry(media: LogEntryMedia) -> bool:
    """Give a failed video a fresh set of attempts (the page's and the admin's Retry). False
    unless it is a failed video whose original is still stored."""
    if not media.reopen():
        return False
    request_transcode(media)
    return True


def request_transcode(media: LogEntryMedia) -> None:
    """Ask the worker app to queue this video's transcode (after the commit, see above)."""
    if not transcode_requested.send(sender=LogEntryMedia, media_id=media.pk):
        log.error("media %s: nobody queues transcodes in this process", media.pk)
