"""Is the worker healthy? One place answers, for /healthz (cheap) and check_worker (full).

Several worker processes (machines, containers) may share one database: each has an
identity (worker_identity) and a heartbeat row of its own; "healthy" means at least one
live worker, and a video is taken back from its worker only when that worker is gone."""

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Max, Q
from django.utils import timezone

from the_flip.apps.maintenance.models import LogEntryMedia, PartialUpload
from the_flip.storage import cached_bucket_problem, is_bucket

from .models import TaskRecord, WorkerHeartbeat
from .records import TRANSCODE_TASK

log = logging.getLogger(__name__)

_last_beat = 0.0
_beat_lock = threading.Lock()
_identity: tuple[int, str] | None = None


def this_host() -> str:
    """Hostname plus pid namespace: two workers with the same value can check each other's
    pids (a container has its own namespace, so its pids mean nothing outside it)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"


def worker_identity() -> str:
    """This process as a worker: host:pid:nonce (the nonce tells a restarted process that
    got the same pid, as in a fresh container, from the one before)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:  # new process (or forked)
        _identity = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}")
    return _identity[1]


def touch() -> None:
    """This worker is alive: its heartbeat row (the beating thread calls this)."""
    WorkerHeartbeat.beat(worker_identity(), host=this_host(), pid=os.getpid())


def beat(*, throttle: float = 0.0) -> bool:
    """The consumer is alive: write its heartbeat row and check in to Sentry Crons.

    Called by the heartbeat task every minute (proof that the consumer's loop runs) and,
    throttled, from a running transcode's progress (a long transcode occupies the only
    worker thread, so the periodic task waits)."""
    global _last_beat
    with _beat_lock:
        now = time.monotonic()
        if throttle and now - _last_beat < throttle:
            return False
        _last_beat = now
    touch()
    if settings.SENTRY_DSN:
        from sentry_sdk.crons import capture_checkin
        from sentry_sdk.crons.consts import MonitorStatus

        capture_checkin(
            monitor_slug=settings.SENTRY_CRONS_MONITOR,
            status=MonitorStatus.OK,
            monitor_config=settings.SENTRY_CRONS_MONITOR_CONFIG,
        )
    return True


def start_beating(stop: threading.Event) -> threading.Thread:
    """A thread that touches this worker's heartbeat every WORKER_BEAT_SECONDS until
    ``stop`` is set, whatever the worker thread is busy with (a long download from the
    bucket, ffprobe, an upload): a live worker's videos are never taken for a dead one's."""

    def run() -> None:
        while not stop.is_set():
            try:
                close_old_connections()  # a database restart leaves a broken connection
                touch()
            except Exception:
                log.warning("could not write the worker heartbeat; trying again", exc_info=True)
            stop.wait(settings.WORKER_BEAT_SECONDS)
        connections.close_all()

    thread = threading.Thread(target=run, name="heartbeat", daemon=True)
    thread.start()
    return thread


def live_workers() -> dict[str, tuple[str, int | None]]:
    """Workers whose heartbeat is younger than WORKER_HEARTBEAT_MAX_AGE: identity -> (host,
    pid)."""
    since = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)
    rows = WorkerHeartbeat.objects.filter(beat_at__gte=since).values_list("worker", "host", "pid")
    return {worker: (host, pid) for worker, host, pid in rows}


def holder_is_alive(worker: str, live: dict[str, tuple[str, int | None]]) -> bool:
    """Is the worker that holds a video still there? Its heartbeat is fresh, and, when it
    runs where we can see its pid (same host and pid namespace), that process exists."""
    if not worker:
        return False  # rows from before workers had identities: only their age counts
    if worker == worker_identity():
        return True
    if worker not in live:
        return False
    host, pid = live[worker]
    if pid and host == this_host():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # killed just now (kill -9, OOM): no need to wait for its beat to age
        except PermissionError:
            pass
    return True


def heartbeat_age() -> float | None:
    """Seconds since any worker last showed life: a heartbeat row or a transcode's
    progress, whichever is newer."""
    beat_at = WorkerHeartbeat.objects.aggregate(latest=Max("beat_at"))["latest"]
    progress_at = LogEntryMedia.objects.filter(
        transcode_status=LogEntryMedia.Status.PROCESSING
    ).aggregate(latest=Max("heartbeat_at"))["latest"]
    latest = max((t for t in (beat_at, progress_at) if t is not None), default=None)
    return None if latest is None else max(0.0, (timezone.now() - latest).total_seconds())


def prune_heartbeats() -> int:
    """Rows of workers gone for WORKER_HEARTBEAT_ROWS_KEPT_SECONDS (a day): every restart or
    recycle is a new worker."""
    older_than = timedelta(seconds=settings.WORKER_HEARTBEAT_ROWS_KEPT_SECONDS)
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - older_than).delete()
    return deleted


def worker_busy() -> bool:
    """A worker is making progress: some video's progress heartbeat (written ~1/s while ffmpeg
    runs) is fresh, i.e. younger than TRANSCODE_STALE_SECONDS."""
    fresh = timezone.now() - timedelta(seconds=settings.TRANSCODE_STALE_SECONDS)
    return LogEntryMedia.objects.filter(
        transcode_status=LogEntryMedia.Status.PROCESSING, heartbeat_at__gte=fresh
    ).exists()


def _pending_for(seconds: float):
    since = timezone.now() - timedelta(seconds=seconds)
    return LogEntryMedia.objects.filter(
        kind=LogEntryMedia.Kind.VIDEO,
        transcode_status=LogEntryMedia.Status.PENDING,
        updated_at__lt=since,
    )


def stuck_media():
    """Videos nobody makes progress on for STUCK_AFTER_SECONDS: processing without a sign of
    life, or pending while no worker is busy. A long transcode that still reports progress is
    busy, not stuck, and the videos waiting behind it are "waiting" (waiting_media) until
    WAITING_MAX_SECONDS."""
    since = timezone.now() - timedelta(seconds=settings.STUCK_AFTER_SECONDS)
    silent = LogEntryMedia.objects.filter(
        Q(heartbeat_at__lt=since) | Q(heartbeat_at__isnull=True),
        kind=LogEntryMedia.Kind.VIDEO,
        transcode_status=LogEntryMedia.Status.PROCESSING,
    )
    waited = settings.WAITING_MAX_SECONDS if worker_busy() else settings.STUCK_AFTER_SECONDS
    return silent | _pending_for(waited)


def waiting_media():
    """Videos pending for over STUCK_AFTER_SECONDS behind a worker that is busy: reported, not
    a failure (that is what a queue is for) until WAITING_MAX_SECONDS."""
    if not worker_busy():
        return LogEntryMedia.objects.none()
    too_long = timezone.now() - timedelta(seconds=settings.WAITING_MAX_SECONDS)
    return _pending_for(settings.STUCK_AFTER_SECONDS).filter(updated_at__gte=too_long)


def quick_problems() -> tuple[list[str], dict]:
    """What /healthz checks: a live worker, nothing stuck (cheap indexed queries), and, with
    a bucket, that it answers (asked at most every STORAGE_HEALTH_CACHE_SECONDS)."""
    problems, facts = [], {}
    if is_bucket():
        problem = cached_bucket_problem(settings.STORAGE_HEALTH_CACHE_SECONDS)
        facts["storage"] = "unreachable" if problem else "ok"
        if problem:  # the details (endpoint, bucket) go to the log and check_worker only
            problems.append("storage unreachable: the file store (bucket) did not answer")
    else:
        facts["storage"] = "local"
    age = heartbeat_age()
    facts["worker_heartbeat_age"] = None if age is None else round(age, 1)
    facts["workers_alive"] = len(live_workers())
    limit = settings.WORKER_HEARTBEAT_MAX_AGE
    if age is None:
        problems.append("the worker has never reported in")
    elif age > limit:
        problems.append(f"no worker heartbeat for {int(age)} s (limit {limit} s)")
    stuck = stuck_media().count()
    facts["stuck_videos"] = stuck
    facts["waiting_videos"] = waiting_media().count()
    if stuck:
        minutes = settings.STUCK_AFTER_SECONDS // 60
        problems.append(f"{stuck} video(s) stuck in pending/processing for over {minutes} minutes")
    return problems, facts


def full_report() -> tuple[list[str], dict]:
    """What check_worker prints: quick_problems plus the last day's outcomes and the queue."""
    from .queue import oldest_queued_age, queue_length

    problems, facts = quick_problems()
    if facts["storage"] == "unreachable":
        problems.append(cached_bucket_problem(settings.STORAGE_HEALTH_CACHE_SECONDS) or "")
    since = timezone.now() - timedelta(hours=24)
    recent = LogEntryMedia.objects.filter(kind=LogEntryMedia.Kind.VIDEO, updated_at__gte=since)
    facts["succeeded_24h"] = recent.filter(transcode_status=LogEntryMedia.Status.READY).count()
    failed = recent.filter(transcode_status=LogEntryMedia.Status.FAILED).order_by("-updated_at")
    facts["failed_24h"] = failed.count()
    latest = failed.first()
    facts["latest_failure"] = (
        {"media": latest.pk, "at": latest.updated_at.isoformat(), "reason": latest.error}
        if latest
        else None
    )
    task_failures = TaskRecord.objects.filter(
        state=TaskRecord.State.FAILED, finished_at__gte=since
    ).exclude(task_name=TRANSCODE_TASK)
    facts["chore_failures_24h"] = task_failures.count()
    facts["queue_length"] = queue_length()
    oldest = oldest_queued_age()
    facts["oldest_queued_age"] = None if oldest is None else round(oldest, 1)
    facts["stuck_after_seconds"] = settings.STUCK_AFTER_SECONDS
    facts["stuck"] = [
        {"media": m.pk, "status": m.transcode_status, "since": m.updated_at.isoformat()}
        for m in stuck_media()[:20]
    ]
    partial = PartialUpload.totals()
    facts["partial_uploads"] = partial["count"]
    facts["partial_upload_bytes"] = partial["bytes"]
    # The hourly expire_partial_uploads chore removes these; many hours late, it is not running.
    late = settings.TUS_EXPIRED_OVERDUE_HOURS
    overdue = PartialUpload.objects.filter(
        expires_at__lt=timezone.now() - timedelta(hours=late)
    ).count()
    if overdue:
        problems.append(
            f"{overdue} resumable upload(s) expired over {late} hours ago are still stored "
            "(the hourly expire_partial_uploads chore has not run)"
        )
    if facts["failed_24h"] and not facts["succeeded_24h"]:
        problems.append(
            f"every video in the last 24 h failed ({facts['failed_24h']}); "
            f"latest: {latest.error or 'no reason recorded'}"
        )
    # Waiting behind a busy worker is what a queue is for, up to WAITING_MAX_SECONDS.
    waited = settings.WAITING_MAX_SECONDS if worker_busy() else settings.STUCK_AFTER_SECONDS
    if oldest is not None and oldest > waited:
        problems.append(f"the oldest queued task has waited {int(oldest // 60)} minutes")
    return problems, facts
