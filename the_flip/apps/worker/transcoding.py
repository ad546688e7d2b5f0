"""The glue between a media row and the pipeline: load, transcode, store, clean up.

The pipeline (the_flip.media) knows nothing of Django; this module knows nothing of huey: it
returns an Outcome (how the run ended, and whether the video must be queued again) and the
task (tasks.py) records it and, if asked, re-queues.
"""

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import sentry_sdk
from django.conf import settings
from django.core.files import File

from the_flip import media as pipeline
from the_flip.apps.maintenance.models import POSTERS, VIDEOS, LogEntryMedia, generated_name
from the_flip.media.errors import DETAIL_LOGGED, DETAIL_REPORTED, Code
from the_flip.storage import STORE_ERRORS

from . import health
from .models import TaskRecord

log = logging.getLogger(__name__)

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """How one transcode run ended, for the task log; ``requeue``: the caller must put the
    video back in the queue (the worker was stopping, the file store did not answer, or the
    job was put off), ``retry_in`` seconds from now, behind the short jobs when ``long_job``."""

    state: TaskRecord.State
    attempt: int | None = None
    error: str = ""
    stderr_tail: str = ""
    requeue: bool = False
    retry_in: float = 0
    long_job: bool = False

    @classmethod
    def of(cls, state: TaskRecord.State, media: LogEntryMedia | None = None, **fields) -> "Outcome":
        return cls(state, attempt=media.attempts if media is not None else None, **fields)


class _JobCancel:
    """When this job's ffmpeg must stop (the pipeline polls ``is_set`` every 50 ms): the
    worker is stopping (``stopping``, process-wide), or a progress write found the video
    deleted or no longer ``processing`` (``video_left``, this job only)."""

    def __init__(self, stopping: threading.Event | None) -> None:
        self.stopping = stopping
        self.video_left = threading.Event()

    def is_set(self) -> bool:
        return self.video_left.is_set() or (self.stopping is not None and self.stopping.is_set())


class _PutOff(Exception):
    """A long job found shorter ones waiting: it goes back in line behind them."""

    def __init__(self, cost: "pipeline.Cost") -> None:
        super().__init__(f"put off: about {cost.wall_seconds / 60:.0f} minutes of converting")
        self.cost = cost


def transcode_video(
    media_id: int,
    cancel: threading.Event | None = None,
    *,
    may_put_off: Callable[[], bool] | None = None,
) -> Outcome:
    """Transcode one uploaded video; return how it ended.

    Safe to call twice for the same id (a duplicate delivery finds it taken, ready or failed
    and is skipped), and safe when the maintainer deletes the video meanwhile: the next
    progress write (~1/s) finds the row gone, ffmpeg is killed and the outputs are thrown
    away. Setting ``cancel`` (the worker is stopping) kills ffmpeg and puts the video back in
    line, to be re-queued, without counting the attempt. A video whose estimated conversion
    exceeds TRANSCODE_SHORT_JOB_SECONDS is put back in line behind shorter ones (attempt not
    counted) when ``may_put_off()`` says others are waiting. Any other error puts the video
    back in line with the attempt counted, then propagates (the task fails, visibly).
    """
    State = TaskRecord.State
    media = LogEntryMedia.objects.filter(pk=media_id, kind=LogEntryMedia.Kind.VIDEO).first()
    if media is None:
        log.info("media %s: gone before its transcode started; nothing to do", media_id)
        return Outcome.of(State.SKIPPED, error="gone: deleted before its transcode started")
    if media.transcode_status != LogEntryMedia.Status.PENDING:
        log.info("media %s: already %s; skipping", media_id, media.transcode_status)
        return Outcome.of(State.SKIPPED, media, error=f"skipped: already {media.transcode_status}")
    if cancel is not None and cancel.is_set():
        # The worker is stopping: leave it for the next one.
        return Outcome.of(State.INTERRUPTED, media, requeue=True)
    if not media.file:
        media.mark_failed(Code.MISSING_ORIGINAL.reason())
        return Outcome.of(State.FAILED, media, error=media.error)
    max_attempts = settings.TRANSCODE_MAX_ATTEMPTS
    if media.attempts >= max_attempts:
        give_up(media, max_attempts)
        return Outcome.of(State.FAILED, media, error=media.error)
    if not media.start_processing(worker=health.worker_identity()):
        log.info("media %s: taken by another worker; skipping", media_id)
        return Outcome.of(State.SKIPPED, media, error="skipped: taken by another worker")
    try:
        return _transcode_held(media, cancel, may_put_off)
    except Exception as error:
        _back_in_line_after(media, error)
        raise  # huey logs it, the task log records it failed, Sentry gets the traceback


def _transcode_held(
    media: LogEntryMedia,
    cancel: threading.Event | None,
    may_put_off: Callable[[], bool] | None,
) -> Outcome:
    """The transcode of a video this worker now holds (``processing``), ended one of the
    expected ways; anything else escapes to transcode_video."""
    State, media_id = TaskRecord.State, media.pk
    log.info("media %s: transcoding %s (attempt %s)", media_id, media.file.name, media.attempts)
    work_root = Path(settings.TRANSCODE_WORK_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{media_id}-", dir=work_root))
    job_cancel = _JobCancel(cancel)
    try:
        source = _fetch_original(media, workdir)
        result = pipeline.transcode(
            source,
            workdir,
            target=settings.TRANSCODE_TARGET,
            limits=settings.TRANSCODE_LIMITS,
            on_progress=lambda percent: _progress(media, percent, job_cancel),
            cancel=job_cancel,
            on_plan=lambda plan: _put_off_if_long(plan, may_put_off),
        )
        if not _store_result(media, result):
            return Outcome.of(State.SKIPPED, media, error="gone: deleted during its transcode")
        return Outcome.of(State.SUCCEEDED, media, stderr_tail=result.stderr_tail)
    except _PutOff as put_off:
        media.mark_pending(count_attempt=False)
        log.info("media %s: %s; shorter videos go first", media_id, put_off)
        return Outcome.of(
            State.SKIPPED,
            media,
            error=f"{put_off}; queued again behind shorter videos",
            requeue=True,
            long_job=True,
        )
    except pipeline.TranscodeCancelled:
        if job_cancel.video_left.is_set():
            return _left_while_converting(media)
        # A deploy or a restart, not the video's fault: back in line, attempt not counted.
        media.mark_pending(count_attempt=False)
        log.info("media %s: transcode stopped (worker stopping); queued again", media_id)
        return Outcome.of(
            State.INTERRUPTED,
            media,
            error="stopped: the worker was shutting down",
            requeue=True,
        )
    except FileNotFoundError:  # the original is not in storage (any more)
        if not media.mark_failed(Code.MISSING_ORIGINAL.reason()):
            return _left_while_converting(media)  # deleted while we fetched it
        return Outcome.of(State.FAILED, media, error=media.error)
    except STORE_ERRORS as error:
        # The bucket did not answer: not the video's fault. Back in line with the reason
        # showing in the admin, attempt not counted, tried again in STORAGE_RETRY_SECONDS.
        log.warning("media %s: the file store did not answer (%s); retrying later", media_id, error)
        reason = Code.STORE_UNAVAILABLE.reason()
        media.mark_pending(count_attempt=False, reason=reason)
        return Outcome.of(
            State.INTERRUPTED,
            media,
            error=f"{reason} ({error})",
            requeue=True,
            retry_in=settings.STORAGE_RETRY_SECONDS,
        )
    except pipeline.MediaError as failure:
        _record_failure(media, failure)
        return Outcome.of(State.FAILED, media, error=failure.reason, stderr_tail=failure.detail)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _progress(media: LogEntryMedia, percent: int, job_cancel: _JobCancel) -> None:
    """About once a second while ffmpeg runs: the row's progress and heartbeat, and, at most
    once a minute, the worker's own heartbeat and Crons check-in (a long transcode holds the
    only worker thread, so the every-minute heartbeat task waits behind it). When the write
    matches no ``processing`` row, the video was deleted or taken away: stop ffmpeg."""
    if not media.record_progress(percent):
        job_cancel.video_left.set()
        return
    health.beat(throttle=settings.WORKER_PROGRESS_BEAT_SECONDS)


def _put_off_if_long(plan: "pipeline.Plan", may_put_off: Callable[[], bool] | None) -> None:
    """Before ffmpeg starts: a long job goes behind the shorter ones waiting (if any)."""
    cost = plan.cost
    if cost is None or may_put_off is None:
        return
    if cost.wall_seconds > settings.TRANSCODE_SHORT_JOB_SECONDS and may_put_off():
        raise _PutOff(cost)


def _back_in_line_after(media: LogEntryMedia, error: Exception) -> None:
    """An error none of the expected endings covers (the scratch disk full or unwritable, the
    media folder refusing an output, a database error, a bug): the video goes back in line
    with the attempt counted. Left ``processing`` under this live worker it would be stuck
    for good, since the stale reset never takes a video from a worker that is alive; pending,
    the every-minute reset queues it again (it has no task in the queue) and gives up after
    TRANSCODE_MAX_ATTEMPTS, as for a worker that died. A video already ready, failed or
    deleted is left alone; if the database itself is down, the error is logged and the video
    waits for the worker's restart."""
    log.warning(
        "media %s: unexpected %s during its transcode (attempt %s): %s; back in line",
        media.pk,
        type(error).__name__,
        media.attempts,
        error,
    )
    try:
        media.mark_pending(reason=Code.WORKER_ERROR.reason())
    except Exception:
        log.exception("media %s: could not put it back in line", media.pk)


def _left_while_converting(media: LogEntryMedia) -> Outcome:
    """ffmpeg was stopped because the row is no longer ours: deleted (its files went with it;
    ours are in the work dir, removed by the caller), reset or failed, or handed to another
    worker by the stale reset. Either way nothing is stored and the row is left alone."""
    now = LogEntryMedia.objects.filter(pk=media.pk).values("transcode_status", "worker").first()
    if now is None:
        log.info("media %s: deleted while converting; ffmpeg stopped, outputs discarded", media.pk)
        why = "cancelled: the video was deleted while converting; ffmpeg stopped"
    elif now["transcode_status"] == LogEntryMedia.Status.PROCESSING:
        log.info("media %s: taken over by worker %s; ffmpeg stopped", media.pk, now["worker"])
        why = "cancelled: another worker took the video over; ffmpeg stopped"
    else:
        status = now["transcode_status"]
        log.info("media %s: became %s while converting; ffmpeg stopped", media.pk, status)
        why = f"cancelled: the video became {status} while converting; ffmpeg stopped"
    return Outcome.of(TaskRecord.State.CANCELLED, media, error=why)


def give_up(media: LogEntryMedia, attempts: int) -> bool:
    """Too many attempts died or hung: fail the video (original kept) and tell Sentry once."""
    if not media.give_up(attempts):
        return False
    log.error("media %s: given up after %s attempts", media.pk, attempts)
    _tell_sentry(
        media,
        Code.GAVE_UP,
        f"Video {media.pk} stuck: gave up after {attempts} attempts",
        level="error",
        fingerprint=["transcode-gave-up"],
        attempts=attempts,
        probe=media.source_summary,
        processing_started_at=str(media.processing_started_at),
        heartbeat_at=str(media.heartbeat_at),
    )
    return True


def _fetch_original(media: LogEntryMedia, workdir: Path) -> Path:
    """Where ffmpeg reads the original. On local disk: where it is stored (no copy). From a
    bucket: a copy in the scratch dir, made in chunks, with the row's heartbeat touched while
    a big download runs, so nobody takes it for a dead transcode. Either way anything over
    the upload cap is refused (a file put in storage by other means, or the cap lowered)."""
    name = media.file.name
    cap = settings.MAX_UPLOAD_BYTES
    too_large = pipeline.MediaError(Code.FILE_TOO_LARGE, mb=cap // (1024 * 1024))
    try:
        in_place = Path(media.file.storage.path(name))
    except NotImplementedError:  # a bucket has no local path
        pass
    else:
        if in_place.stat().st_size > cap:
            raise too_large
        return in_place
    destination = workdir / ("original" + PurePosixPath(name).suffix.lower()[:8])
    copied, touched = 0, time.monotonic()
    with media.file.storage.open(name, "rb") as stored, destination.open("wb") as scratch:
        while chunk := stored.read(COPY_CHUNK):
            copied += len(chunk)
            if copied > cap:
                raise too_large
            scratch.write(chunk)
            if time.monotonic() - touched >= 1:
                media.record_progress(0)
                touched = time.monotonic()
    return destination


class _ScratchFile(File):
    """A finished output in the scratch dir. ``temporary_file_path`` lets FileSystemStorage
    move it into place (a rename: same volume) instead of copying; a bucket uploads it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def _store_output(source: Path, folder: str, suffix: str, storage) -> str:
    with _ScratchFile(source.open("rb")) as output:
        return storage.save(generated_name(folder, suffix), output)


def _store_result(media: LogEntryMedia, result: "pipeline.TranscodeResult") -> bool:
    """Store the outputs, record them (ready) and delete the original; False when the video
    was deleted, or given to another worker, while we worked (the outputs are thrown away)."""
    storage = media.file.storage
    stored: list[str] = []
    try:
        stored.append(_store_output(result.video_path, VIDEOS, ".mp4", storage))
        stored.append(_store_output(result.poster_path, POSTERS, ".jpg", storage))
    except BaseException:
        _delete_quietly(storage, stored)  # else the orphan chore would, an hour later
        raise
    video_name, poster_name = stored
    original = media.file.name
    recorded = media.mark_ready(
        video_name=video_name,
        poster_name=poster_name,
        duration=result.duration,
        width=result.width,
        height=result.height,
        source_summary=result.info.summary(),
    )
    if not recorded:
        _delete_quietly(storage, stored)
        log.info("media %s: deleted or taken over during transcode; outputs discarded", media.pk)
        return False
    # The original goes only now that the playable copy is safely recorded.
    _delete_quietly(storage, [original])
    log.info(
        "media %s: ready (%s, %dx%d, %.1fs)",
        media.pk,
        "remuxed" if result.copied else f"transcoded: {', '.join(result.reencode_reasons)}",
        result.width,
        result.height,
        result.duration,
    )
    return True


def _delete_quietly(storage, names: list[str]) -> None:
    """Best effort: what cannot be deleted now is an orphan the hourly chore removes."""
    for name in names:
        try:
            storage.delete(name)
        except (OSError, *STORE_ERRORS) as error:
            log.warning("could not delete %s now (%s); the orphan chore will", name, error)


def _record_failure(media: LogEntryMedia, failure: "pipeline.MediaError") -> None:
    log.warning(
        "media %s: failed (%s): %s | source: %s | ffmpeg: %s",
        media.pk,
        failure.code,
        failure.reason,
        failure.probe_summary,
        failure.detail[-DETAIL_LOGGED:].replace("\n", " / "),
    )
    media.mark_failed(failure.reason, failure.detail, source_summary=failure.probe_summary)
    _tell_sentry(
        media,
        failure.code,
        f"Video transcode failed: {failure.reason}",
        level="warning",
        fingerprint=["transcode-failed", str(failure.code)],
        attempt=media.attempts,
        reason=failure.reason,
        probe=failure.probe_summary,
        ffmpeg_stderr_tail=failure.detail[-DETAIL_REPORTED:],
    )


def _tell_sentry(
    media: LogEntryMedia, code: str, message: str, *, level: str, fingerprint: list, **context
) -> None:
    """One Sentry event about one video, tagged with its id and the failure code, with what
    an admin needs to follow up in the ``transcode`` context."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("media_id", media.pk)
        scope.set_tag("failure", str(code))
        scope.set_context("transcode", {"media_id": media.pk, **context})
        scope.fingerprint = fingerprint
        sentry_sdk.capture_message(message, level=level)
