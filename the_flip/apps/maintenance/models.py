"""Log entries and their photos and videos.

A LogEntryMedia row is the single source of truth for a video's state: the queue only carries
its id, and every transition (pending → processing → ready/failed) is written here first.
"""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models.functions import Greatest
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
            "name": self.original_name,  # as the phone named it, so a maintainer knows which
        }

    # --- State transitions (queryset updates: the web and the worker write concurrently) --

    def _update(self, only_from: tuple[str, ...] = (), **fields) -> bool:
        """Write fields to this row only, and, with ``only_from``, only while the row is still
        in one of those states (so two workers, or a worker and a reset, never both win the
        same transition). False when no row matched: deleted meanwhile, or someone else won;
        this instance is then left as it was."""
        fields.setdefault("updated_at", timezone.now())
        rows = LogEntryMedia.objects.filter(pk=self.pk)
        if only_from:
            rows = rows.filter(transcode_status__in=only_from)
        if not rows.update(**fields):
            return False
        computed = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
        for name, value in fields.items():
            if name not in computed:
                setattr(self, name, value)
        if computed:  # e.g. attempts = F("attempts") + 1: read back what the database made
            self.refresh_from_db(fields=computed)
        return True

    def start_processing(self) -> bool:
        """pending → processing, counting one attempt. False when someone else has it (or it
        is gone): the caller must then leave it alone."""
        now = timezone.now()
        return self._update(
            (self.Status.PENDING,),
            transcode_status=self.Status.PROCESSING,
            attempts=models.F("attempts") + 1,
            processing_started_at=now,
            heartbeat_at=now,
            progress=0,
            error="",
            error_detail="",
        )

    def record_progress(self, percent: int) -> None:
        """Called about once a second by the pipeline; doubles as the worker's heartbeat."""
        self._update(progress=max(0, min(99, int(percent))), heartbeat_at=timezone.now())

    def mark_ready(
        self,
        *,
        video_name: str,
        poster_name: str,
        duration: float,
        width: int,
        height: int,
        source_summary: str = "",
    ) -> bool:
        """processing → ready in one write: the outputs recorded and ``file`` (the original)
        cleared together, so no ready row ever points at an original. The caller deletes the
        original's file afterwards; if it crashes first, the orphan chore does."""
        return self._update(
            file="",
            source_summary=source_summary[:255],
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

    def mark_failed(self, reason: str, detail: str = "", source_summary: str = "") -> bool:
        summary = {"source_summary": source_summary[:255]} if source_summary else {}
        return self._update(
            **summary,
            transcode_status=self.Status.FAILED,
            progress=None,
            error=reason,
            error_detail=detail[-8000:],
        )

    def mark_pending(self, *, count_attempt: bool = True) -> bool:
        """processing → pending (back in line): a worker stopped mid-transcode, or a reset
        found it stale. A graceful stop (a deploy) passes count_attempt=False: that attempt
        was not the video's fault and does not count towards giving up."""
        fields = {"transcode_status": self.Status.PENDING, "progress": None}
        if not count_attempt:
            fields["attempts"] = Greatest(models.F("attempts") - 1, 0)
        return self._update((self.Status.PROCESSING, self.Status.PENDING), **fields)

    def give_up(self, attempts: int) -> bool:
        """After too many attempts (each one died or hung), stop trying; keep the original so
        an admin can retry."""
        return self._update(
            (self.Status.PROCESSING, self.Status.PENDING),
            transcode_status=self.Status.FAILED,
            progress=None,
            error=f"We tried {attempts} times and could not process this video.",
        )

    def reopen(self) -> bool:
        """failed → pending with a fresh set of attempts (Retry; see attachments.retry, which
        also queues it). False unless this is a failed video whose original is still stored."""
        if not (self.is_video and self.transcode_status == self.Status.FAILED and self.file):
            return False
        return self._update(
            (self.Status.FAILED,),
            transcode_status=self.Status.PENDING,
            attempts=0,
            progress=None,
            error="",
        )

    def touch(self) -> bool:
        """Only updated_at: "looked at just now" (the reset chore re-queues a lost video and
        leaves it alone until the queue had its chance)."""
        return self._update()

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
