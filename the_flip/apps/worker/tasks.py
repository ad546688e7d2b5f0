"""huey tasks, and the one place a transcode is queued. Each task is a thin wrapper: the work
lives in plain functions (transcoding.py, chores.py), which return what should happen next;
this module acts on it. The schedules are settings (WORKER_SCHEDULES)."""

import functools
import logging

from django.conf import settings
from django.db import transaction
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from . import chores, health, lifecycle, queue, records
from .transcoding import transcode_video

log = logging.getLogger(__name__)

# Shortest first: huey takes higher priorities first. A new upload gets the default (0); a
# video whose estimated conversion is long goes back in line at LONG_JOB_PRIORITY, behind
# every short one (and the chores), in upload order among the long ones.
LONG_JOB_PRIORITY = -10


@db_task(context=True, name=records.TRANSCODE_TASK)
def transcode_media(media_id: int, task=None, **extra) -> None:
    # **extra: sentry-sdk's huey integration adds `sentry_headers` to every task enqueued by a
    # process where Sentry is on; a consumer without Sentry must not crash on it.
    already_long = task is not None and (task.priority or 0) <= LONG_JOB_PRIORITY
    outcome = transcode_video(
        media_id,
        cancel=lifecycle.STOPPING,
        # A long job is put off once, and only when something else is waiting.
        may_put_off=None if already_long else functools.partial(_others_waiting, media_id),
    )
    if outcome.requeue:
        enqueue_transcode(
            media_id, delay=outcome.retry_in, long_job=already_long or outcome.long_job
        )
    if task is not None:
        records.finish(
            task.id,
            outcome.state,
            attempt=outcome.attempt,
            error=outcome.error,
            stderr_tail=outcome.stderr_tail,
        )


def enqueue_transcode(media_id: int, delay: float = 0, *, long_job: bool = False) -> None:
    """Queue a transcode once the current transaction commits (at once outside one): before,
    the worker could find the row missing or in its old state. ``delay``: not before that
    many seconds from now (a file store that did not answer gets a moment). ``long_job``:
    behind the short ones."""
    priority = LONG_JOB_PRIORITY if long_job else None
    if delay:
        transaction.on_commit(
            functools.partial(transcode_media.schedule, (media_id,), delay=delay, priority=priority)
        )
    else:
        transaction.on_commit(functools.partial(transcode_media, media_id, priority=priority))


def _others_waiting(media_id: int) -> bool:
    """Another video's transcode is in the queue (so a long job here would hold it up)."""
    return bool(queue.queued_media_ids() - {media_id})


def on_transcode_requested(sender, media_id: int, **kwargs) -> None:
    """Receiver of maintenance.attachments.transcode_requested (connected in apps.py)."""
    enqueue_transcode(media_id)


def requeue_stale_transcodes(stale_after: float | None = None) -> dict[str, int]:
    """Run the stale-work chore and queue what it picked; returns its counts."""
    reset = chores.reset_stale_transcodes(stale_after)
    for media_id in reset.enqueue:
        enqueue_transcode(media_id)
    return reset.counts


def _schedule(chore: str) -> crontab:
    return crontab(**settings.WORKER_SCHEDULES[chore])


@db_periodic_task(_schedule("write_heartbeat"))
def write_heartbeat() -> None:
    """Tell /healthz, check_worker and Sentry Crons that the consumer is alive."""
    health.beat()


@db_periodic_task(_schedule("reset_stale_transcodes"))
def reset_stale_transcodes() -> None:
    """Re-enqueue videos whose worker died or whose task was lost."""
    counts = requeue_stale_transcodes()
    if any(counts.values()):
        log.warning("stale transcodes: %s", counts)


@db_periodic_task(_schedule("prune"))
def prune() -> None:
    """Drop old task records and heartbeats, orphaned media files and stale temp files."""
    log.info("pruned: %s", chores.prune())


@db_periodic_task(_schedule("expire_partial_uploads"))
def expire_partial_uploads() -> None:
    """Remove resumable uploads nobody finished before Upload-Expires, bytes too."""
    chores.expire_partial_uploads()


@on_startup()
def announce_startup() -> None:
    if not HUEY.immediate:
        try:
            health.beat()
        except Exception:
            log.exception("could not write the startup heartbeat")
