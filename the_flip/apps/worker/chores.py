"""The worker's periodic chores as plain functions (tasks.py schedules them; tests call them).

- reset_stale_transcodes: nothing is ever lost or stuck (huey alone is at-most-once). It
  decides which videos go back in the queue; tasks.py queues them (the one place that does).
- prune_task_records, remove_orphaned_files (local folder or bucket), remove_stale_temp_files,
  expire_partial_uploads, and health.prune_heartbeats: nothing piles up.
"""

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db.models import Q
from django.utils import timezone

from the_flip.apps.maintenance.models import (
    MEDIA_FOLDERS,
    PARTIAL_UPLOAD_PREFIX,
    LogEntryMedia,
    PartialUpload,
    delete_partial_prefix,
)
from the_flip.storage import abort_stale_multipart_uploads, is_bucket

from . import health
from .models import TaskRecord
from .queue import queued_media_ids
from .transcoding import give_up

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaleReset:
    """What reset_stale_transcodes did and decided: ``requeued`` videos went back in line,
    ``gave_up`` failed for good, and ``enqueue`` are the media ids the caller must queue (a
    video back in line whose task is still in the queue needs none)."""

    requeued: int = 0
    gave_up: int = 0
    enqueue: tuple[int, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        return {"requeued": self.requeued, "gave_up": self.gave_up}


def reset_stale_transcodes(stale_after: float | None = None) -> StaleReset:
    """Put videos whose worker died back in line, and pick videos nobody is going to take.

    - ``processing`` whose worker is gone (its own heartbeat row is stale, or its process
      is not there: health.holder_is_alive) and whose progress heartbeat (~1/s while ffmpeg
      runs) is older than ``stale_after`` seconds (TRANSCODE_STALE_SECONDS): the worker died
      (SIGKILL, OOM, power). Back to pending and re-enqueued. A video whose worker is alive
      is never taken, however long its download, probe or upload keeps it quiet: several
      workers may share the database.
    - ``pending`` for longer than TRANSCODE_REQUEUE_PENDING_SECONDS with no task for it in
      the queue: the task was lost (dequeued by a worker that then died). Re-enqueued.
    - Either one after TRANSCODE_MAX_ATTEMPTS attempts: failed, original kept, Sentry told.
    """
    now = timezone.now()
    if stale_after is None:
        stale_after = settings.TRANSCODE_STALE_SECONDS
    max_attempts = settings.TRANSCODE_MAX_ATTEMPTS
    enqueue, requeued, gave_up = [], 0, 0
    videos = LogEntryMedia.objects.filter(kind=LogEntryMedia.Kind.VIDEO)
    stale = videos.filter(transcode_status=LogEntryMedia.Status.PROCESSING).filter(
        Q(heartbeat_at__lt=now - timedelta(seconds=stale_after)) | Q(heartbeat_at__isnull=True)
    )
    queued = queued_media_ids()
    live = health.live_workers()
    for media in stale:
        if health.holder_is_alive(media.worker, live):
            continue
        TaskRecord.objects.filter(
            media=media, state__in=[TaskRecord.State.RUNNING, TaskRecord.State.QUEUED]
        ).update(
            state=TaskRecord.State.INTERRUPTED,
            finished_at=now,
            error="the worker stopped responding (killed or out of memory?)",
        )
        if media.attempts >= max_attempts:
            gave_up += give_up(media, max_attempts)
        elif media.mark_pending():
            log.warning(
                "media %s: worker stopped responding (attempt %s); queued again",
                media.pk,
                media.attempts,
            )
            requeued += 1
            if media.pk not in queued:
                enqueue.append(media.pk)
    pending_since = now - timedelta(seconds=settings.TRANSCODE_REQUEUE_PENDING_SECONDS)
    lost = videos.filter(
        transcode_status=LogEntryMedia.Status.PENDING, updated_at__lt=pending_since
    ).exclude(pk__in=queued)
    for media in lost:
        if media.attempts >= max_attempts:
            gave_up += give_up(media, max_attempts)
            continue
        log.warning("media %s: pending with nothing queued for it; queued again", media.pk)
        media.touch()  # not again before the queue had its chance
        requeued += 1
        enqueue.append(media.pk)
    return StaleReset(requeued, gave_up, tuple(enqueue))


def prune_task_records() -> int:
    """Keep the last TASK_RECORDS_KEEP_SUCCEEDED successes (and as many skipped runs, and
    cancelled ones, each counted apart) and TASK_RECORDS_KEEP_FAILED_DAYS of failures;
    records of tasks lost (TASK_RECORDS_LOST_AFTER_SECONDS still queued or running) become
    failures first."""
    now = timezone.now()
    lost_before = now - timedelta(seconds=settings.TASK_RECORDS_LOST_AFTER_SECONDS)
    TaskRecord.objects.filter(state__in=[TaskRecord.State.QUEUED, TaskRecord.State.RUNNING]).filter(
        Q(started_at__lt=lost_before) | Q(started_at__isnull=True, enqueued_at__lt=lost_before)
    ).update(state=TaskRecord.State.INTERRUPTED, finished_at=now, error="lost: never finished")
    keep = settings.TASK_RECORDS_KEEP_SUCCEEDED
    deleted = 0
    for state in (TaskRecord.State.SUCCEEDED, TaskRecord.State.SKIPPED, TaskRecord.State.CANCELLED):
        records = TaskRecord.objects.filter(state=state)
        newest = list(records.order_by("-id").values_list("id", flat=True)[:keep])
        deleted += records.exclude(id__in=newest).delete()[0]
    cutoff = now - timedelta(days=settings.TASK_RECORDS_KEEP_FAILED_DAYS)
    failures = TaskRecord.objects.filter(
        state__in=[TaskRecord.State.FAILED, TaskRecord.State.INTERRUPTED]
    )
    old_failures, _ = failures.filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, enqueued_at__lt=cutoff)
    ).delete()
    return deleted + old_failures


def prune() -> dict[str, int]:
    """The hourly clean-up: old task records, orphaned media files, stale temp files, and
    the heartbeat rows of workers gone for a day."""
    return {
        "task_records": prune_task_records(),
        "orphaned_files": len(remove_orphaned_files()),
        "temp_files": len(remove_stale_temp_files()),
        "worker_heartbeats": health.prune_heartbeats(),
    }


def _older_than(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.lstat().st_mtime > seconds
    except FileNotFoundError:
        return False


# Anything in the storage outside MEDIA_FOLDERS belongs to someone else: the files under
# tus's `partial/` to expire_partial_uploads (only its empty folders are swept here, on a
# local disk).


def _stored_names(storage, folder: str):
    """Every file under ``folder``, recursively, through the storage API (local or bucket)."""
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _stored_names(storage, f"{folder}/{sub}")


def remove_orphaned_files(min_age: float | None = None) -> list[str]:
    """Delete stored files (local folder or bucket) that no media row references, once
    older than ``min_age`` seconds (ORPHAN_FILE_MIN_AGE, an hour: an upload being saved, or
    an output being recorded, is never touched). On a bucket, also abort the multipart
    uploads a process killed mid-upload left behind (invisible in listings, still stored);
    on a local disk, remove the empty folders as old, there and under PARTIAL_UPLOAD_PREFIX
    (each finished, deleted or expired resumable upload leaves one)."""
    if min_age is None:
        min_age = settings.ORPHAN_FILE_MIN_AGE
    storage = default_storage
    referenced = set()
    for names in LogEntryMedia.objects.values_list("file", "transcoded_file", "poster_file"):
        referenced.update(name for name in names if name)
    cutoff = timezone.now() - timedelta(seconds=min_age)
    removed = []
    for folder in MEDIA_FOLDERS:
        for name in _stored_names(storage, folder):
            if name in referenced:
                continue
            try:
                if storage.get_modified_time(name) >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            # Re-check just before deleting: a row may have appeared since we listed them.
            if LogEntryMedia.objects.filter(
                Q(file=name) | Q(transcoded_file=name) | Q(poster_file=name)
            ).exists():
                continue
            storage.delete(name)
            removed.append(name)
    if is_bucket(storage):
        aborted = abort_stale_multipart_uploads(storage, timedelta(seconds=min_age))
        removed += [f"{key} (unfinished upload)" for key in aborted]
    elif isinstance(storage, FileSystemStorage):
        for folder in (*MEDIA_FOLDERS, PARTIAL_UPLOAD_PREFIX):
            _remove_empty_dirs(Path(storage.location) / folder, min_age, time.time())
    if removed:
        log.info("removed %d orphaned media file(s): %s", len(removed), ", ".join(removed[:20]))
    return removed


def remove_stale_temp_files(max_age: float | None = None) -> list[str]:
    """Delete leftovers under DATA_DIR/tmp (upload temp files, transcode work dirs of a
    worker that died) untouched for ``max_age`` seconds (TEMP_FILE_MAX_AGE)."""
    if max_age is None:
        max_age = settings.TEMP_FILE_MAX_AGE
    # nginx keeps using its folders, so they stay (its temp files are unlinked the moment it
    # opens them: none outlive it).
    nginx = Path(settings.NGINX_TEMP_DIR)
    roots = {
        Path(settings.DATA_DIR) / "tmp",
        Path(settings.FILE_UPLOAD_TEMP_DIR),
        Path(settings.TRANSCODE_WORK_DIR),
        nginx,
        *(folder for folder in nginx.glob("*") if folder.is_dir()),
    }
    now, removed = time.time(), []
    for root in roots:
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                if entry in roots:
                    continue
                newest = max((p.lstat().st_mtime for p in [entry, *entry.rglob("*")]), default=now)
                if now - newest > max_age:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(str(entry))
            elif _older_than(entry, max_age, now):
                entry.unlink(missing_ok=True)
                removed.append(str(entry))
    if removed:
        log.info("removed %d stale temp file(s)", len(removed))
    return removed


def _remove_empty_dirs(root: Path, min_age: float, now: float) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if _older_than(folder, min_age, now):
            with contextlib.suppress(OSError):  # not empty
                os.rmdir(folder)


def expire_partial_uploads(min_age: float | None = None) -> dict[str, int]:
    """Delete resumable uploads past their Upload-Expires (TUS_EXPIRE_HOURS after the last
    PATCH) with their bytes, and bytes under PARTIAL_UPLOAD_PREFIX that no upload row owns
    any more (a crash between deleting the row and its objects), once ``min_age`` seconds old
    (ORPHAN_FILE_MIN_AGE; an upload being created is never touched)."""
    if min_age is None:
        min_age = settings.ORPHAN_FILE_MIN_AGE
    counts = {"expired": 0, "orphaned_objects": 0}
    for upload in PartialUpload.objects.filter(expires_at__lte=timezone.now()):
        log.info("upload %s expired with %d of %d bytes", upload.pk, upload.offset, upload.length)
        upload.delete()  # post_delete removes its bytes
        counts["expired"] += 1
    try:
        folders, _ = default_storage.listdir(PARTIAL_UPLOAD_PREFIX)
    except FileNotFoundError:
        folders = []
    live = {upload_id.hex for upload_id in PartialUpload.objects.values_list("id", flat=True)}
    cutoff = timezone.now() - timedelta(seconds=min_age)
    for folder in folders:
        if folder in live:
            continue
        prefix = f"{PARTIAL_UPLOAD_PREFIX}/{folder}"
        _, names = default_storage.listdir(prefix)
        if any(default_storage.get_modified_time(f"{prefix}/{n}") > cutoff for n in names):
            continue
        if PartialUpload.objects.filter(pk=folder).exists():  # created since we looked
            continue
        counts["orphaned_objects"] += delete_partial_prefix(prefix)
    if any(counts.values()):
        log.info("partial uploads: %s", counts)
    return counts
