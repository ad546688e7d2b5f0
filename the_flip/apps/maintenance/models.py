"""Log entries and their photos and videos.

A LogEntryMedia row is the single source of truth for a video's state: the queue only carries
its id, and every transition (pending → processing → ready/failed) is written here first.
"""

import secrets
import uuid
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.db.models.functions import Greatest
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from the_flip.media.errors import DETAIL_KEPT, Code


def generated_name(folder: str, suffix: str) -> str:
    """Stored files get a random name: never the uploader's, never guessable."""
    day = timezone.now().strftime("%Y/%m")
    return f"{folder}/{day}/{uuid.uuid4().hex}{suffix}"


def served_url(name: str) -> str:
    """The URL on our host that serves a stored file (see serving.serve_media)."""
    return reverse("media-file", kwargs={"path": name})


# The storage folders media rows point into, each named here once: uploads go to ORIGINALS
# (videos) and PHOTOS, the worker's outputs to VIDEOS and POSTERS. The orphan chore sweeps
# them all; /media/ serves only SERVED_FOLDERS (never an original).
ORIGINALS, PHOTOS, VIDEOS, POSTERS = "originals", "photos", "videos", "posters"
MEDIA_FOLDERS = (ORIGINALS, VIDEOS, POSTERS, PHOTOS)
SERVED_FOLDERS = frozenset({VIDEOS, POSTERS, PHOTOS})


def upload_to(instance: "LogEntryMedia", filename: str) -> str:
    folder = ORIGINALS if instance.kind == LogEntryMedia.Kind.VIDEO else PHOTOS
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
    # The client's Idempotency-Key for the POST that created this entry ("" = none): a retry
    # with the same key (double tap, timeout) answers this entry instead of making another.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "log entries"
        constraints = [
            # Two racing posts with one key: the second insert fails, so one entry exists.
            models.UniqueConstraint(
                fields=["author", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_entry_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.machine} — {self.created_at:%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return reverse("log-entry-detail", args=[self.pk])

    @classmethod
    def created_with_key(cls, author, key: str) -> "LogEntry | None":
        """The entry ``author`` created with this Idempotency-Key within IDEMPOTENCY_KEY_HOURS.
        An older one gives the key up (cleared), so the key can make a new entry."""
        earlier = cls.objects.filter(author=author, idempotency_key=key).first()
        if earlier is None:
            return None
        if earlier.created_at >= timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS):
            return earlier
        cls.objects.filter(pk=earlier.pk, idempotency_key=key).update(idempotency_key="")
        return None


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
    # The worker process (health.worker_identity) that holds it while processing: the stale
    # reset takes a video back only when that worker's own heartbeat says it died.
    worker = models.CharField(max_length=120, blank=True)
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

    # URLs on our host, whatever the storage: /media/... checks the login, then serves the
    # file or redirects to a short-lived signed bucket URL (FieldFile.url would be the
    # bucket's own, which never expires from the page's point of view and skips the login).
    @property
    def video_url(self) -> str | None:
        if self.is_video and self.is_ready and self.transcoded_file:
            return served_url(self.transcoded_file.name)
        return None

    @property
    def poster_url(self) -> str | None:
        if self.is_video and self.is_ready and self.poster_file:
            return served_url(self.poster_file.name)
        return None

    @property
    def photo_url(self) -> str | None:
        if not self.is_video and self.is_ready and self.file:
            return served_url(self.file.name)
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
            "error": (self.error or Code.UNKNOWN.reason()) if failed else None,
            "url": self.get_absolute_url(),
            "name": self.original_name,  # as the phone named it, so a maintainer knows which
        }

    # --- State transitions (queryset updates: the web and the worker write concurrently) --

    def _update(
        self, only_from: tuple[str, ...] = (), held_by: str | None = None, **fields
    ) -> bool:
        """Write fields to this row only, and, with ``only_from``, only while the row is still
        in one of those states (so two workers, or a worker and a reset, never both win the
        same transition), and, with ``held_by``, only while that worker holds it. False when
        no row matched: deleted meanwhile, or someone else won; this instance is then left
        as it was."""
        fields.setdefault("updated_at", timezone.now())
        rows = LogEntryMedia.objects.filter(pk=self.pk)
        if only_from:
            rows = rows.filter(transcode_status__in=only_from)
        if held_by is not None:
            rows = rows.filter(worker=held_by)
        if not rows.update(**fields):
            return False
        computed = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
        for name, value in fields.items():
            if name not in computed:
                setattr(self, name, value)
        if computed:  # e.g. attempts = F("attempts") + 1: read back what the database made
            self.refresh_from_db(fields=computed)
        return True

    def start_processing(self, worker: str = "") -> bool:
        """pending → processing by ``worker``, counting one attempt. False when someone else
        has it (or it is gone): the caller must then leave it alone."""
        now = timezone.now()
        return self._update(
            (self.Status.PENDING,),
            transcode_status=self.Status.PROCESSING,
            worker=worker,
            attempts=models.F("attempts") + 1,
            processing_started_at=now,
            heartbeat_at=now,
            progress=0,
            error="",
            error_detail="",
        )

    def record_progress(self, percent: int) -> bool:
        """Called about once a second by the pipeline; doubles as the worker's heartbeat.
        False when the row is gone (the maintainer deleted it), no longer ``processing``
        (reset, failed) or held by another worker (the stale reset gave it away): the caller
        must then stop converting it."""
        return self._update(
            (self.Status.PROCESSING,),
            held_by=self.worker,
            progress=max(0, min(99, int(percent))),
            heartbeat_at=timezone.now(),
        )

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
        original's file afterwards; if it crashes first, the orphan chore does. Only while
        this instance's worker still holds it: a worker the stale reset gave up on must not
        overwrite the one that took over."""
        return self._update(
            (self.Status.PROCESSING,),
            held_by=self.worker,
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
        """pending or processing → failed, with the maintainer's sentence. Only while this
        instance's worker still holds it, as for mark_ready: a worker the stale reset gave up
        on must not fail the video another worker converts (or has made ready)."""
        summary = {"source_summary": source_summary[:255]} if source_summary else {}
        return self._update(
            (self.Status.PENDING, self.Status.PROCESSING),
            held_by=self.worker,
            **summary,
            transcode_status=self.Status.FAILED,
            progress=None,
            error=reason,
            error_detail=detail[-DETAIL_KEPT:],
        )

    def mark_pending(self, *, count_attempt: bool = True, reason: str = "") -> bool:
        """processing → pending (back in line): a worker stopped mid-transcode, or a reset
        found it stale, or the file store did not answer (``reason`` says so in the admin).
        A graceful stop (a deploy) passes count_attempt=False: that attempt was not the
        video's fault and does not count towards giving up. Only while this instance's
        worker still holds it (see mark_failed)."""
        fields = {"transcode_status": self.Status.PENDING, "progress": None, "error": reason}
        if not count_attempt:
            fields["attempts"] = Greatest(models.F("attempts") - 1, 0)
        return self._update(
            (self.Status.PROCESSING, self.Status.PENDING), held_by=self.worker, **fields
        )

    def give_up(self, attempts: int) -> bool:
        """After too many attempts (each one died or hung), stop trying; keep the original so
        an admin can retry."""
        return self._update(
            (self.Status.PROCESSING, self.Status.PENDING),
            transcode_status=self.Status.FAILED,
            progress=None,
            error=Code.GAVE_UP.reason(attempts=attempts),
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


# Where unfinished resumable (tus) uploads keep their bytes in the storage: one object per
# PATCH, `partial/<upload uuid>/<offset, 12 digits>-<claim token>`. The orphaned-files chore
# leaves the files under this prefix to expire_partial_uploads (worker/chores.py), which owns
# them; on a local disk it removes the empty folders they leave, once an hour old.
PARTIAL_UPLOAD_PREFIX = "partial"


class PartialUpload(models.Model):
    """A resumable (tus) upload on its way in: the row is the truth about what is stored.

    Each PATCH stores its chunk as its own object through the storage API (so a bucket works
    like the disk) and only then advances ``offset`` and appends the chunk to ``chunks``, in
    one conditional UPDATE on the writer's ``claim`` token: HEAD reports what is really
    stored, and two PATCHes at once cannot both write (the loser is refused, see claim()).
    When the last byte is stored, tus.py assembles the chunks and attaches the file like any
    upload; ``media`` then points at the result and the chunks are deleted.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    log_entry = models.ForeignKey(LogEntry, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255, help_text="From Upload-Metadata")
    filetype = models.CharField(max_length=255, blank=True, help_text="From Upload-Metadata")
    length = models.BigIntegerField(help_text="Upload-Length: the whole file, in bytes")
    offset = models.BigIntegerField(default=0, help_text="Bytes stored so far")
    # [[start, size, object name], ...] in order; they add up to `offset`.
    chunks = models.JSONField(default=list, blank=True)
    # The token of the PATCH writing now ("" = nobody) and since when.
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    media = models.OneToOneField(
        LogEntryMedia, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset} of {self.length} bytes)"

    @classmethod
    def totals(cls) -> dict[str, int]:
        """How many unfinished uploads there are and how many bytes they hold (check_worker
        and the admin show it)."""
        unfinished = cls.objects.filter(media__isnull=True)
        stored = unfinished.aggregate(count=models.Count("pk"), bytes=models.Sum("offset"))
        return {"count": stored["count"], "bytes": stored["bytes"] or 0}

    @staticmethod
    def expiry_from(moment) -> "timezone.datetime":
        return moment + timedelta(hours=settings.TUS_EXPIRE_HOURS)

    @property
    def is_complete(self) -> bool:
        return self.media_id is not None

    @property
    def all_bytes_stored(self) -> bool:
        return self.offset >= self.length

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    def get_location(self) -> str:
        """The upload's URL (the tus Location)."""
        return reverse("api-upload", args=[self.log_entry_id, self.pk])

    @property
    def prefix(self) -> str:
        return f"{PARTIAL_UPLOAD_PREFIX}/{self.pk.hex}"

    def chunk_name(self, start: int, token: str) -> str:
        # The claim token makes every PATCH's object name its own: a writer that lost its
        # claim can delete what it stored without touching the winner's bytes.
        return f"{self.prefix}/{start:012d}-{token}"

    # --- Who may write (conditional UPDATEs: several web threads and processes at once) ----

    def claim_at(self, offset: int) -> str | None:
        """Take the upload for one PATCH starting at ``offset``; returns the claim token, or
        None when the offset is wrong, another PATCH holds it, or it is finished (re-read the
        row to tell which). A claim older than TUS_CLAIM_STALE_SECONDS is free again: its
        request died."""
        token = secrets.token_hex(8)
        now = timezone.now()
        stale = now - timedelta(seconds=settings.TUS_CLAIM_STALE_SECONDS)
        won = (
            PartialUpload.objects.filter(pk=self.pk, offset=offset, media__isnull=True)
            .filter(models.Q(claim="") | models.Q(claimed_at__lt=stale))
            .update(claim=token, claimed_at=now)
        )
        if not won:
            return None
        self.refresh_from_db()
        return token

    def record_chunk(self, token: str, name: str, size: int) -> bool:
        """The chunk ``name`` of ``size`` bytes is stored: advance the offset (and, unless that
        was the last byte, release the claim: the completing PATCH keeps it while it attaches).
        False when the claim was lost meanwhile; the caller then deletes its chunk."""
        now = timezone.now()
        offset = self.offset + size
        fields = {
            "offset": offset,
            "chunks": [*self.chunks, [self.offset, size, name]],
            "updated_at": now,
            "expires_at": self.expiry_from(now),
        }
        if offset < self.length:
            fields.update(claim="", claimed_at=None)
        if not PartialUpload.objects.filter(pk=self.pk, claim=token).update(**fields):
            return False
        for field, value in fields.items():
            setattr(self, field, value)
        return True

    def release(self, token: str, **fields) -> bool:
        """Give the claim back, writing ``fields`` with it (e.g. media= at completion)."""
        return bool(
            PartialUpload.objects.filter(pk=self.pk, claim=token).update(
                claim="", claimed_at=None, **fields
            )
        )

    # --- Bytes -------------------------------------------------------------------------

    def open_chunks(self):
        """The stored chunks in order, each opened for reading from the storage."""
        for start, size, name in self.chunks:
            yield start, size, default_storage.open(name, "rb")

    def delete_bytes(self) -> int:
        """Delete every object under this upload's prefix (also a lost writer's leftovers);
        returns how many."""
        return delete_partial_prefix(self.prefix)


def delete_partial_prefix(prefix: str) -> int:
    """Delete the objects directly under ``prefix`` (one partial upload's chunks)."""
    try:
        _, names = default_storage.listdir(prefix)
    except FileNotFoundError:  # the disk storage: nothing was ever stored
        names = []
    for name in names:
        default_storage.delete(f"{prefix}/{name}")
    # On disk the empty folder stays until the hourly prune (chores.remove_orphaned_files)
    # removes it, once it has been empty for ORPHAN_FILE_MIN_AGE.
    return len(names)


@receiver(post_delete, sender=PartialUpload)
def _remove_bytes_with_partial_upload(sender, instance: PartialUpload, **kwargs) -> None:
    """A deleted partial upload (DELETE, expiry, its log entry deleted) takes its bytes along."""
    instance.delete_bytes()
