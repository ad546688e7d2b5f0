"""Log entries and their photos and videos.

A LogEntryMedia row is the single source of truth for a video's state: the queue only carries
its id, and every transition (pending → processing → ready/failed) is written here first.
"""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone


def generated_name(folder: str, suffix: str) -> str:
    """Stored files get a random name: never the uploader's, never guessable."""
    day = timezone.now().strftime("%Y/%m")
    return f"{folder}/{day}/{uuid.uuid4().hex}{suffix}"


def upload_to(instance: "LogEntryMedia", filename: str) -> str:
    folder = "originals" if instance.kind == LogEntryMedia.Kind.VIDEO else "photos"
    return generated_name(folder, PurePosixPath(filename).suffix.lower()[:8])


class LogEntry(models.Model):
    """One piece of work a maintainer did on a machine."""

    machine = models.ForeignKey(
        "catalog.Machine", on_delete=models.CASCADE, related_name="log_entries"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="log_entries"
    )
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "log entries"

    def __str__(self) -> str:
        return f"{self.machine} — {self.created_at:%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse("log-entry-detail", args=[self.pk])

    def attach(self, upload, kind: str, cleaned_photo=None) -> "LogEntryMedia":
        """Store an already validated upload (see uploads.prepare) on this entry.

        Photos are ready at once; a video is stored as it came and queued for the worker.
        """
        media = LogEntryMedia(
            log_entry=self,
            kind=kind,
            original_name=(upload.name or "")[:255],
            original_size=upload.size,
        )
        if kind == LogEntryMedia.Kind.PHOTO:
            media.transcode_status = LogEntryMedia.Status.READY
            media.progress = 100
            media.file.save("photo.jpg", cleaned_photo, save=False)
        else:
            media.file.save(upload.name or "video.mov", upload, save=False)
        media.save()
        if media.is_video:
            media.schedule_transcode()
        return media


class LogEntryMedia(models.Model):
    """A photo or video attached to a log entry."""

    class Kind(models.TextChoices):
        PHOTO = "photo"
        VIDEO = "video"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    log_entry = models.ForeignKey(LogEntry, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    # The upload as received (videos) or the cleaned JPEG (photos). A video's original is
    # deleted once its transcode succeeds.
    file = models.FileField(upload_to=upload_to, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True, help_text="As the phone named it")
    original_size = models.BigIntegerField(null=True, blank=True)
    transcoded_file = models.FileField(max_length=255, blank=True)
    poster_file = models.FileField(max_length=255, blank=True)
    transcode_status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it failed, in plain words")
    error_detail = models.TextField(blank=True, help_text="ffmpeg's last words, for admins")
    source_summary = models.CharField(max_length=255, blank=True, help_text="What ffprobe saw")
    attempts = models.PositiveSmallIntegerField(default=0)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "media"
        verbose_name_plural = "media"

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.transcode_status})"

    # --- What the page and the API show ------------------------------------------------

    @property
    def is_video(self) -> bool:
        return self.kind == self.Kind.VIDEO

    @property
    def is_ready(self) -> bool:
        return self.transcode_status == self.Status.READY

    @property
    def video_url(self) -> str | None:
        if self.is_video and self.is_ready and self.transcoded_file:
            return self.transcoded_file.url
        return None

    @property
    def poster_url(self) -> str | None:
        if self.is_video and self.is_ready and self.poster_file:
            return self.poster_file.url
        return None

    @property
    def photo_url(self) -> str | None:
        if not self.is_video and self.is_ready and self.file:
            return self.file.url
        return None

    def get_absolute_url(self) -> str:
        return reverse("api-media-detail", args=[self.pk])

    def as_json(self) -> dict:
        """The contract's <media> object."""
        failed = self.transcode_status == self.Status.FAILED
        return {
            "id": self.pk,
            "kind": self.kind,
            "status": self.transcode_status,
            "progress": 100 if self.is_ready else self.progress,
            "duration": self.duration,
            "video_url": self.video_url,
            "poster_url": self.poster_url,
            "photo_url": self.photo_url,
            "error": (self.error or "We could not process this file.") if failed else None,
            "url": self.get_absolute_url(),
        }

    # --- State transitions (queryset updates: the web and the worker write concurrently) --

    def _update(self, **fields) -> bool:
        """Write fields to this row only; False when the row is gone (deleted meanwhile)."""
        fields.setdefault("updated_at", timezone.now())
        updated = LogEntryMedia.objects.filter(pk=self.pk).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)
        return bool(updated)

    def start_processing(self) -> bool:
        now = timezone.now()
        started = self._update(
            transcode_status=self.Status.PROCESSING,
            attempts=models.F("attempts") + 1,
            processing_started_at=now,
            heartbeat_at=now,
            progress=0,
            error="",
            error_detail="",
        )
        if started:
            self.refresh_from_db(fields=["attempts"])
        return started

    def record_progress(self, percent: int) -> None:
        """Called about once a second by the pipeline; doubles as the worker's heartbeat."""
        self._update(progress=max(0, min(99, int(percent))), heartbeat_at=timezone.now())

    def mark_ready(
        self, *, video_name: str, poster_name: str, duration: float, width: int, height: int
    ) -> bool:
        return self._update(
            transcoded_file=video_name,
            poster_file=poster_name,
            transcode_status=self.Status.READY,
            progress=100,
            duration=duration,
            width=width,
            height=height,
            error="",
            error_detail="",
        )

    def mark_failed(self, reason: str, detail: str = "") -> bool:
        return self._update(
            transcode_status=self.Status.FAILED,
            progress=None,
            error=reason,
            error_detail=detail[-8000:],
        )

    def mark_pending(self) -> bool:
        """Back in line: used when a worker stops mid-transcode or a retry is asked for."""
        return self._update(transcode_status=self.Status.PENDING, progress=None)

    def retry(self) -> bool:
        """Give a failed video a fresh set of attempts (the page's and the admin's Retry)."""
        if not (self.is_video and self.transcode_status == self.Status.FAILED and self.file):
            return False
        self._update(transcode_status=self.Status.PENDING, attempts=0, progress=None, error="")
        self.schedule_transcode()
        return True

    def schedule_transcode(self) -> None:
        """Queue the transcode once the row is committed (never before: the worker would
        not find it)."""
        from the_flip.apps.worker.tasks import transcode_media

        transaction.on_commit(lambda: transcode_media(self.pk))

    # --- Files -------------------------------------------------------------------------

    def stored_files(self) -> list[models.fields.files.FieldFile]:
        return [f for f in (self.file, self.transcoded_file, self.poster_file) if f]

    def delete_files(self) -> None:
        for field_file in self.stored_files():
            field_file.storage.delete(field_file.name)


@receiver(post_delete, sender=LogEntryMedia)
def _remove_files_with_row(sender, instance: LogEntryMedia, **kwargs) -> None:
    """Deleting media (one, or a whole log entry's) removes its files from disk too."""
    instance.delete_files()
