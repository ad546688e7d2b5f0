"""huey tasks. Each is a thin wrapper: the work itself lives in plain functions."""

import logging

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from . import chores, health, lifecycle, records
from .models import TaskRecord
from .transcoding import transcode_video

log = logging.getLogger(__name__)

_OUTCOME_STATE = {
    "ready": TaskRecord.State.SUCCEEDED,
    "failed": TaskRecord.State.FAILED,
    "pending": TaskRecord.State.INTERRUPTED,  # the worker was stopping; queued again
}


@db_task(context=True)
def transcode_media(media_id: int, task=None, **extra) -> None:
    # **extra: sentry-sdk's huey integration adds `sentry_headers` to every task enqueued by a
    # process where Sentry is on; a consumer without Sentry must not crash on it.
    outcome = transcode_video(media_id, cancel=lifecycle.STOPPING)
    if task is not None:
        records.finish(
            task.id,
            _OUTCOME_STATE.get(str(outcome), TaskRecord.State.SUCCEEDED),
            attempt=outcome.attempt,
            error=outcome.error or ("" if outcome in _OUTCOME_STATE else f"{outcome}: no work"),
            stderr_tail=outcome.stderr_tail,
        )


@db_periodic_task(crontab(minute="*"))
def write_heartbeat() -> None:
    """Every minute: tell /healthz, check_worker and Sentry Crons that the consumer is alive."""
    health.beat()


@db_periodic_task(crontab(minute="*"))
def reset_stale_transcodes() -> None:
    """Every minute: re-enqueue videos whose worker died or whose task was lost."""
    counts = chores.reset_stale_transcodes()
    if any(counts.values()):
        log.warning("stale transcodes: %s", counts)


@db_periodic_task(crontab(minute="17"))
def prune() -> None:
    """Hourly: drop old task records and heartbeats, orphaned media files and temp files."""
    pruned = chores.prune_task_records() + health.prune_heartbeats()
    orphans = chores.remove_orphaned_files()
    temps = chores.remove_stale_temp_files()
    log.info("pruned %d task records, %d orphaned files, %d temp files", pruned, len(orphans),
             len(temps))  # fmt: skip


@on_startup()
def announce_startup() -> None:
    if not HUEY.immediate:
        try:
            health.beat()
        except Exception:
            log.exception("could not write the startup heartbeat")
