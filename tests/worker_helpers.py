"""Helpers shared by the worker tests: videos in a given state, the queue's contents."""

from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia


def make_video(machine, *, status="pending", attempts=0, age=0.0, heartbeat_age=None, **fields):
    """A video row (with an original on disk) whose last change was ``age`` seconds ago."""
    entry = LogEntry.objects.create(machine=machine, text="worker test")
    media = LogEntryMedia(log_entry=entry, kind=LogEntryMedia.Kind.VIDEO, original_name="x.mov")
    media.file.save("x.mov", ContentFile(b"not really a video"), save=False)
    media.save()
    now = timezone.now()
    LogEntryMedia.objects.filter(pk=media.pk).update(
        transcode_status=status,
        attempts=attempts,
        updated_at=now - timedelta(seconds=age),
        heartbeat_at=None if heartbeat_age is None else now - timedelta(seconds=heartbeat_age),
        processing_started_at=None if heartbeat_age is None else now - timedelta(seconds=age),
        **fields,
    )
    media.refresh_from_db()
    return media


def flush_queue() -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.storage.flush_queue()
    HUEY.storage.flush_schedule()


def queued_ids() -> list[int]:
    from huey.contrib.djhuey import HUEY

    from the_flip.apps.worker.records import media_id_of

    return [media_id_of(task) for task in HUEY.pending() if media_id_of(task) is not None]
