"""Helpers shared by the worker tests: videos in a given state, the queue's contents."""

from datetime import timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia


def make_video(
    machine, *, status="pending", attempts=0, age=0.0, heartbeat_age=None,
    original=b"not really a video", **fields,
):  # fmt: skip
    """A video row (with an original in storage) whose last change was ``age`` seconds ago."""
    entry = LogEntry.objects.create(machine=machine, text="worker test")
    media = LogEntryMedia(log_entry=entry, kind=LogEntryMedia.Kind.VIDEO, original_name="x.mov")
    media.file.save("x.mov", ContentFile(original), save=False)
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


def post_clip(client, machine, clip: Path, content_type: str, text: str) -> LogEntryMedia:
    """A maintainer posts a new log entry with one clip, as the API's clients do; its media row."""
    response = client.post(
        "/api/log-entries/",
        {
            "machine": machine.pk,
            "text": text,
            "media": [SimpleUploadedFile(clip.name, clip.read_bytes(), content_type)],
        },
    )
    assert response.status_code == 201, response.content
    return LogEntryMedia.objects.get(pk=response.json()["media"][0]["id"])


def mid_transcode(media: LogEntryMedia) -> LogEntryMedia:
    """Wait until a worker's ffmpeg is converting this video (processing, progress > 0)."""
    from tests.conftest import wait_for  # (conftest imports this module)

    def busy():
        media.refresh_from_db()
        return media.transcode_status == "processing" and (media.progress or 0) > 0

    wait_for(busy, timeout=60, interval=0.05, what="ffmpeg to be running")
    return media


def refused_over_the_cap(machine, settings) -> LogEntryMedia:
    """A 3 MB original in storage with the cap lowered to 1 MB (as if put there by other
    means): the worker refuses it with the maintainer's sentence. The row, reloaded."""
    from the_flip.apps.worker.transcoding import transcode_video

    media = make_video(machine, original=b"\0" * (3 * 1024 * 1024))
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    outcome = transcode_video(media.pk)
    media.refresh_from_db()
    assert outcome.state == "failed" and media.transcode_status == "failed"
    assert media.error == "This video is larger than 1 MB, the most we accept for one file."
    return media
