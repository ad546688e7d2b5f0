"""The task log the admin shows (TaskRecord), written from huey's signals.

Every handler swallows its own errors: a task log that cannot be written (the database is
restarting, say) must never break the worker or an upload.
"""

import logging
import os

from django.db import close_old_connections
from django.utils import timezone
from huey import signals as S
from huey.api import PeriodicTask
from huey.contrib.djhuey import HUEY

from the_flip.media.errors import DETAIL_REPORTED

from .models import TaskRecord

log = logging.getLogger(__name__)

ERROR_CHARS = 2000  # of an error message kept in the task log

# The transcode task's name: tasks.py registers the task under it; the task log, the queue
# views (queue.py), health and the tests all ask here.
TRANSCODE_TASK = "transcode_media"


def media_id_of(task) -> int | None:
    """The media id a queued transcode task carries; None for any other task."""
    if task.name == TRANSCODE_TASK and task.args:
        try:
            return int(task.args[0])
        except (TypeError, ValueError):
            return None
    return None


def _short_name(task) -> str:
    return task.name.rsplit(".", 1)[-1][:100]


def _safely(fn):
    def handler(signal, task, *args):
        try:
            fn(signal, task, *args)
        except Exception:
            log.exception("could not write the task log for %s (%s)", task.id, signal)

    handler.__name__ = fn.__name__
    return handler


def _media_exists(media_id: int | None) -> int | None:
    from the_flip.apps.maintenance.models import LogEntryMedia

    if media_id is None:
        return None
    return media_id if LogEntryMedia.objects.filter(pk=media_id).exists() else None


@HUEY.signal(S.SIGNAL_ENQUEUED)
@_safely
def task_enqueued(signal, task) -> None:
    if isinstance(task, PeriodicTask):
        return  # chores every minute would drown the log; their failures are recorded
    TaskRecord.objects.create(
        task_id=task.id,
        task_name=_short_name(task),
        media_id=_media_exists(media_id_of(task)),
        state=TaskRecord.State.QUEUED,
        enqueued_at=timezone.now(),
    )


def _running_record(task) -> TaskRecord:
    record = TaskRecord.objects.filter(task_id=task.id).order_by("-id").first()
    if record is None:  # enqueued before the log existed, or its record was pruned
        record = TaskRecord(
            task_id=task.id,
            task_name=_short_name(task),
            media_id=_media_exists(media_id_of(task)),
        )
    return record


@HUEY.signal(S.SIGNAL_EXECUTING)
@_safely
def task_executing(signal, task) -> None:
    if isinstance(task, PeriodicTask):
        return
    close_old_connections()  # the database may have restarted while the worker idled
    record = _running_record(task)
    record.state = TaskRecord.State.RUNNING
    record.started_at = timezone.now()
    record.worker_pid = os.getpid()
    record.save()


def finish(task_id: str, state: str, *, attempt=None, error: str = "", stderr_tail: str = ""):
    """Close the running record of ``task_id`` (the transcode task calls this itself)."""
    now = timezone.now()
    record = (
        TaskRecord.objects.filter(task_id=task_id, state=TaskRecord.State.RUNNING)
        .order_by("-id")
        .first()
    )
    if record is None:
        return
    record.state = state
    record.finished_at = now
    record.duration = (now - record.started_at).total_seconds() if record.started_at else None
    record.attempt = attempt
    record.error = error[:ERROR_CHARS]
    record.stderr_tail = stderr_tail[-DETAIL_REPORTED:]
    record.save()


@HUEY.signal(S.SIGNAL_COMPLETE)
@_safely
def task_complete(signal, task) -> None:
    if not isinstance(task, PeriodicTask):
        finish(task.id, TaskRecord.State.SUCCEEDED)  # no-op when the task recorded itself


@HUEY.signal(S.SIGNAL_ERROR)
@_safely
def task_error(signal, task, exc=None) -> None:
    close_old_connections()
    if isinstance(task, PeriodicTask):
        now = timezone.now()
        TaskRecord.objects.create(
            task_id=task.id,
            task_name=_short_name(task),
            state=TaskRecord.State.FAILED,
            started_at=now,
            finished_at=now,
            worker_pid=os.getpid(),
            error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
        )
        return
    finish(task.id, TaskRecord.State.FAILED, error=f"{type(exc).__name__}: {exc}")


@HUEY.signal(S.SIGNAL_INTERRUPTED)
@_safely
def task_interrupted(signal, task) -> None:
    if not isinstance(task, PeriodicTask):
        finish(task.id, TaskRecord.State.INTERRUPTED, error="the worker stopped")
