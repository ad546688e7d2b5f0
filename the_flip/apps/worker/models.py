from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """One row per worker process, touched every WORKER_BEAT_SECONDS by a thread of its own
    (and by the every-minute heartbeat task): proof that this worker is alive, read by
    /healthz ("any live worker") and by the stale reset (is a video's holder still there?).
    A restarted process is a new worker (its identity has a fresh nonce); rows of workers
    gone for a day are pruned."""

    worker = models.CharField(max_length=120, unique=True, help_text="host:pid:nonce")
    host = models.CharField(
        max_length=200, help_text="hostname/pid namespace: pids are comparable only within one"
    )
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"worker {self.worker} at {self.beat_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, worker: str, *, host: str = "", pid: int | None = None) -> None:
        cls.objects.update_or_create(
            worker=worker, defaults={"beat_at": timezone.now(), "host": host, "pid": pid}
        )


class TaskRecord(models.Model):
    """One run of a queued task, for the admin: what ran, when, how it ended, and why not.

    Written by huey's signals (queued → running → succeeded/failed) and, for transcodes, by
    the glue (which knows the media's outcome and ffmpeg's last words). Pruned by a chore.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        # Ran, but there was nothing to do: the video was deleted, already done, or taken by
        # another worker (a duplicate delivery). Not a success: it must not push real
        # successes out of the task log.
        SKIPPED = "skipped"
        # Stopped mid-conversion because the video left `processing` under it (deleted by a
        # maintainer, or reset): ffmpeg was killed and the outputs thrown away. Not a failure.
        CANCELLED = "cancelled"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    task_id = models.CharField(max_length=64, db_index=True)
    task_name = models.CharField(max_length=100)
    media = models.ForeignKey(
        "maintenance.LogEntryMedia",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="task_records",
    )
    state = models.CharField(
        max_length=12, choices=State.choices, default=State.QUEUED, db_index=True
    )
    attempt = models.PositiveSmallIntegerField(null=True, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    duration = models.FloatField(null=True, blank=True, help_text="seconds")
    error = models.TextField(blank=True)
    stderr_tail = models.TextField(blank=True, help_text="ffmpeg's last words")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "finished_at"])]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id[:8]} ({self.state})"
