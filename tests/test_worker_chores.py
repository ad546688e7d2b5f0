"""The chores that keep a volunteer-run worker from losing, sticking or piling up anything."""

import os
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from the_flip.apps.maintenance import attachments
from the_flip.apps.maintenance.models import (
    PARTIAL_UPLOAD_PREFIX,
    LogEntry,
    LogEntryMedia,
    PartialUpload,
)
from the_flip.apps.worker import chores, health, tasks
from the_flip.apps.worker.models import TaskRecord, WorkerHeartbeat

from .test_resumable_uploads import TUS, create, patch
from .worker_helpers import flush_queue, make_video, queued_ids, refused_over_the_cap

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue():
    flush_queue()
    yield
    flush_queue()


def reset(django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return tasks.requeue_stale_transcodes(**kwargs)


def test_processing_with_a_stale_heartbeat_goes_back_in_line_and_is_enqueued(
    machine, settings, django_capture_on_commit_callbacks
):
    dead = make_video(machine, status="processing", attempts=1, age=600, heartbeat_age=300)
    alive = make_video(machine, status="processing", attempts=1, age=600, heartbeat_age=2)
    counts = reset(django_capture_on_commit_callbacks)
    assert counts == {"requeued": 1, "gave_up": 0}
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.transcode_status == "pending" and dead.attempts == 1
    assert alive.transcode_status == "processing"
    assert queued_ids() == [dead.pk]
    assert dead.file and os.path.exists(dead.file.path), "the original stays until success"


def worker_beat(worker: str, *, seconds_ago: float, host: str = "other-machine/1", pid=7):
    WorkerHeartbeat.objects.create(
        worker=worker, host=host, pid=pid, beat_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_several_workers_a_video_goes_back_only_when_its_own_worker_is_gone(
    machine, django_capture_on_commit_callbacks
):
    """Another machine's worker is downloading a big original (no progress for minutes) but
    its heartbeat is fresh: its video stays with it. A worker whose heartbeat stopped, or a
    worker on this machine whose process is gone (kill -9: no need to wait for its
    heartbeat to age), loses its video to the queue."""
    worker_beat("other-machine:7:aaaaaa", seconds_ago=5)
    worker_beat("gone-machine:8:bbbbbb", seconds_ago=600)
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    worker_beat(f"here:{dead_pid.pid}:cccccc", seconds_ago=1, host=health.this_host(),
                pid=dead_pid.pid)  # fmt: skip

    def held_by(worker: str):
        return make_video(machine, status="processing", attempts=1, age=600, heartbeat_age=300,
                          worker=worker)  # fmt: skip

    busy = held_by("other-machine:7:aaaaaa")
    silent = held_by("gone-machine:8:bbbbbb")
    killed = held_by(f"here:{dead_pid.pid}:cccccc")
    never_beat = held_by("vanished:9:dddddd")
    assert reset(django_capture_on_commit_callbacks) == {"requeued": 3, "gave_up": 0}
    statuses = {m.pk: m.transcode_status for m in LogEntryMedia.objects.all()}
    assert statuses[busy.pk] == "processing"
    assert {statuses[m.pk] for m in (silent, killed, never_beat)} == {"pending"}
    assert sorted(queued_ids()) == sorted([silent.pk, killed.pk, never_beat.pk])


def test_a_worker_starting_up_takes_back_only_the_videos_of_dead_workers(
    transactional_db, machine, settings
):
    """A second worker starting (a deploy, a scale-up) while another transcodes: the live
    one's video stays with it even though its progress is older than the start-up margin."""
    from the_flip.apps.worker.management.commands.run_worker import startup_reset

    settings.WORKER_STARTUP_STALE_SECONDS = 0.5
    worker_beat("busy-machine:7:aaaaaa", seconds_ago=3)
    busy = make_video(machine, status="processing", attempts=1, age=60, heartbeat_age=10,
                      worker="busy-machine:7:aaaaaa")  # fmt: skip
    orphan = make_video(machine, status="processing", attempts=1, age=60, heartbeat_age=10,
                        worker="dead-machine:8:bbbbbb")  # fmt: skip
    startup_reset()  # as run_worker calls it: its own connection, autocommit
    statuses = dict(LogEntryMedia.objects.values_list("pk", "transcode_status"))
    assert statuses == {busy.pk: "processing", orphan.pk: "pending"}
    assert queued_ids() == [orphan.pk]


def test_a_worker_that_lost_its_video_cannot_mark_it_ready(machine):
    media = make_video(machine, status="processing", attempts=1, worker="slow:1:aaaaaa")
    media.refresh_from_db()
    # The stale reset gave it to another worker meanwhile.
    LogEntryMedia.objects.filter(pk=media.pk).update(worker="fast:2:bbbbbb")
    assert not media.mark_ready(video_name="v.mp4", poster_name="p.jpg", duration=1.0,
                                width=2, height=2)  # fmt: skip
    media.refresh_from_db()
    assert media.transcode_status == "processing" and media.worker == "fast:2:bbbbbb"


def test_pending_with_nothing_queued_is_enqueued_once(machine, django_capture_on_commit_callbacks):
    lost = make_video(machine, status="pending", age=120)
    fresh = make_video(machine, status="pending", age=5)  # its on_commit enqueue is coming
    assert reset(django_capture_on_commit_callbacks)["requeued"] == 1
    assert queued_ids() == [lost.pk]
    # Next minute: it is in the queue now, so nothing is added twice.
    lost.refresh_from_db()
    LogEntryMedia.objects.filter(pk=lost.pk).update(
        updated_at=timezone.now() - timedelta(seconds=120)
    )
    assert reset(django_capture_on_commit_callbacks)["requeued"] == 0
    assert queued_ids() == [lost.pk]
    assert fresh.pk not in queued_ids()


def test_after_three_attempts_the_video_fails_with_a_plain_reason_and_keeps_its_original(
    machine, django_capture_on_commit_callbacks
):
    media = make_video(machine, status="processing", attempts=3, age=900, heartbeat_age=600)
    TaskRecord.objects.create(task_id="t1", task_name="transcode_media", media=media,
                              state="running", started_at=timezone.now())  # fmt: skip
    assert reset(django_capture_on_commit_callbacks) == {"requeued": 0, "gave_up": 1}
    media.refresh_from_db()
    assert media.transcode_status == "failed"
    assert media.error == "We tried 3 times and could not process this video."
    assert media.as_json()["error"] == media.error
    assert os.path.exists(media.file.path)
    assert queued_ids() == []
    assert TaskRecord.objects.get(task_id="t1").state == "interrupted"
    # The admin's retry gives it a fresh set of attempts.
    with django_capture_on_commit_callbacks(execute=True):
        assert attachments.retry(media)
    media.refresh_from_db()
    assert media.transcode_status == "pending" and media.attempts == 0
    assert queued_ids() == [media.pk]


def test_a_graceful_stop_does_not_count_the_attempt(machine):
    media = make_video(machine, status="pending", attempts=1)
    assert media.start_processing()
    assert media.attempts == 2
    assert not media.start_processing(), "only one worker wins the same video"
    assert media.mark_pending(count_attempt=False)
    media.refresh_from_db()
    assert (media.transcode_status, media.attempts) == ("pending", 1)


def test_pruning_keeps_the_last_50_successes_and_90_days_of_failures(machine, settings):
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"s{i}", task_name="transcode_media", state="succeeded",
                   enqueued_at=now - timedelta(minutes=i), finished_at=now)
        for i in range(500)
    )  # fmt: skip
    TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"f{i}", task_name="transcode_media", state="failed",
                   finished_at=now - timedelta(days=i))
        for i in range(200)
    )  # fmt: skip
    TaskRecord.objects.create(task_id="lost", task_name="transcode_media", state="running",
                              started_at=now - timedelta(days=2))  # fmt: skip
    newest = list(
        TaskRecord.objects.filter(state="succeeded").order_by("-id").values_list("id", flat=True)
    )[:50]
    chores.prune_task_records()
    assert sorted(TaskRecord.objects.filter(state="succeeded").values_list("id", flat=True)) == (
        sorted(newest)
    )
    failures = TaskRecord.objects.filter(state="failed")
    assert failures.count() == 90  # 0..89 days old
    assert TaskRecord.objects.get(task_id="lost").state == "interrupted"
    chores.prune_task_records()  # idempotent
    assert TaskRecord.objects.filter(state="succeeded").count() == 50


def test_skipped_runs_never_push_successes_out_of_the_task_log(machine):
    """A duplicate delivery or a video deleted before its turn is recorded as skipped, and the
    50 successes an operator looks back on stay, however many skips came after them."""
    succeeded = TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"s{i}", task_name="transcode_media", state="succeeded")
        for i in range(50)
    )
    TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"k{i}", task_name="transcode_media", state="skipped") for i in range(80)
    )
    chores.prune_task_records()
    assert TaskRecord.objects.filter(state="succeeded").count() == len(succeeded)
    assert TaskRecord.objects.filter(state="skipped").count() == 50


def test_a_transcode_of_a_video_already_done_is_recorded_as_skipped(machine):
    """huey may deliver a task twice: the second run finds the video ready and says so."""
    from the_flip.apps.worker.transcoding import transcode_video

    done = make_video(machine, status="ready")
    outcome = transcode_video(done.pk)
    assert outcome.state == TaskRecord.State.SKIPPED
    assert outcome.error == "skipped: already ready"
    assert not outcome.requeue
    gone = transcode_video(done.pk + 1000)
    assert gone.state == TaskRecord.State.SKIPPED and gone.attempt is None


def test_a_worker_the_reset_gave_up_on_cannot_fail_or_requeue_the_video_of_another(machine):
    """Worker A froze; the reset handed its video to worker B. When A wakes and its ffmpeg
    fails, its writes match nothing: B's conversion, and B's finished video, stay as they are."""
    held_by_a = make_video(machine, status="processing", worker="worker-a:1:aa")
    LogEntryMedia.objects.filter(pk=held_by_a.pk).update(worker="worker-b:2:bb", progress=40)
    assert not held_by_a.mark_failed("ffmpeg timed out")
    assert not held_by_a.mark_pending()
    row = LogEntryMedia.objects.get(pk=held_by_a.pk)
    assert (row.transcode_status, row.worker, row.progress) == ("processing", "worker-b:2:bb", 40)

    LogEntryMedia.objects.filter(pk=held_by_a.pk).update(transcode_status="ready", file="")
    assert not held_by_a.mark_failed("ffmpeg timed out")
    assert LogEntryMedia.objects.get(pk=held_by_a.pk).transcode_status == "ready"


def test_an_original_over_the_cap_on_local_disk_is_refused_and_kept(machine, settings):
    """On local disk ffmpeg reads the original where it is stored (no copy), and the cap is
    checked there too (a file put in storage by other means, or the cap lowered since)."""
    media = refused_over_the_cap(machine, settings)
    assert media.file.storage.exists(media.file.name), "the original is kept for a retry"
    work_root = settings.TRANSCODE_WORK_DIR
    assert not [p for p in work_root.rglob("*") if p.is_file()], "nothing left in scratch"


def test_an_operator_can_run_the_chores_by_hand(
    machine, capsys, django_capture_on_commit_callbacks
):
    """When told to, a volunteer runs `manage.py reset_stale_transcodes` or `manage.py prune`
    and reads what they did."""
    from django.core.management import call_command

    dead = make_video(machine, status="processing", attempts=1, age=600, heartbeat_age=300)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reset_stale_transcodes")
    assert "videos back in line: 1; given up: 0" in capsys.readouterr().out
    assert queued_ids() == [dead.pk]
    TaskRecord.objects.bulk_create(
        TaskRecord(task_id=f"s{i}", task_name="transcode_media", state="succeeded")
        for i in range(60)
    )
    call_command("prune")
    assert "task records removed: 10;" in capsys.readouterr().out
    assert TaskRecord.objects.filter(state="succeeded").count() == 50


def test_ready_is_one_write_that_also_lets_go_of_the_original(machine):
    """No row is ever ready while still pointing at its original: the outputs and the
    cleared original are one UPDATE (the glue deletes the file afterwards)."""
    media = make_video(machine, status="processing", attempts=1, age=30)
    before = media.updated_at
    assert media.mark_ready(
        video_name="videos/v.mp4", poster_name="posters/p.jpg", duration=2.0, width=320,
        height=240, source_summary="mov,mp4 h264 320x240",
    )  # fmt: skip
    stored = LogEntryMedia.objects.get(pk=media.pk)
    assert (stored.transcode_status, stored.file.name) == ("ready", "")
    assert stored.transcoded_file.name == "videos/v.mp4" and stored.updated_at > before
    assert (media.transcode_status, media.file.name) == ("ready", ""), "the instance follows"


def _age(path, seconds):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_orphaned_media_files_older_than_an_hour_are_removed(machine, settings):
    media = make_video(machine)
    root = settings.MEDIA_ROOT
    orphan = root / "originals" / "2026" / "01" / "orphan.mov"
    recent = root / "originals" / "2026" / "01" / "just-uploaded.mov"
    for path in (orphan, recent):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    _age(orphan, 7200)
    _age(media.file.path, 7200)
    removed = chores.remove_orphaned_files()
    assert removed == ["originals/2026/01/orphan.mov"]
    assert not orphan.exists() and recent.exists() and os.path.exists(media.file.path)


def test_stale_temp_files_are_removed(settings):
    work = settings.TRANSCODE_WORK_DIR
    uploads = settings.FILE_UPLOAD_TEMP_DIR
    work.mkdir(parents=True, exist_ok=True)
    dead = work / "media-7-abc"
    live = work / "media-8-def"
    for folder in (dead, live):
        (folder / "transcode-x").mkdir(parents=True)
        (folder / "transcode-x" / "video.mp4").write_bytes(b"x")
    stale_upload = uploads / "tmpabc.upload"
    stale_upload.write_bytes(b"x")
    for path in [dead, *dead.rglob("*"), stale_upload]:
        _age(path, 7 * 3600)
    chores.remove_stale_temp_files()
    assert not dead.exists() and not stale_upload.exists()
    assert (live / "transcode-x" / "video.mp4").exists()


def test_resumable_uploads_done_with_leave_no_empty_folder_and_one_in_progress_keeps_its_own(
    maintainer_client, maintainer, machine, photo, settings
):
    """On the local disk each resumable upload keeps its chunks in partial/<upload id>/; once
    it is finished, cancelled or expired the chunks go and the folder is left empty. The
    hourly prune removes such folders once they have been empty for an hour, and nothing else
    there: an upload in progress keeps its folder and its bytes, and a folder emptied a moment
    ago waits for the next hour (a PATCH may be about to store into it)."""
    entry = LogEntry.objects.create(machine=machine, author=maintainer, text="New rubbers")
    partial = Path(settings.MEDIA_ROOT) / PARTIAL_UPLOAD_PREFIX

    def start(length: int) -> tuple[str, Path]:
        location = create(maintainer_client, entry, length)["Location"]
        return location, partial / uuid.UUID(location.rstrip("/").rsplit("/", 1)[-1]).hex

    def folders() -> list[Path]:
        return sorted(p for p in partial.iterdir() if p.is_dir())

    content = photo.read_bytes()
    finished, finished_folder = start(len(content))
    patch(maintainer_client, finished, 0, content[:1000])
    assert patch(maintainer_client, finished, 1000, content[1000:])["Media-Location"]
    abandoned, abandoned_folder = start(100)
    patch(maintainer_client, abandoned, 0, b"q" * 30)
    PartialUpload.objects.filter(media__isnull=True).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert chores.expire_partial_uploads() == {"expired": 1, "orphaned_objects": 0}
    in_progress, in_progress_folder = start(100)
    patch(maintainer_client, in_progress, 0, b"k" * 30)
    assert folders() == sorted([finished_folder, abandoned_folder, in_progress_folder])
    assert not any(finished_folder.iterdir()) and not any(abandoned_folder.iterdir())

    # An hour later, while the phone is still away; meanwhile another upload is cancelled.
    for folder in (finished_folder, abandoned_folder, in_progress_folder):
        _age(folder, 7200)
    cancelled, cancelled_folder = start(100)
    patch(maintainer_client, cancelled, 0, b"z" * 30)
    assert maintainer_client.delete(cancelled, headers=TUS).status_code == 204
    chores.prune()
    assert folders() == sorted([in_progress_folder, cancelled_folder])
    assert [p.read_bytes() for p in in_progress_folder.iterdir()] == [b"k" * 30]
    assert maintainer_client.head(in_progress, headers=TUS)["Upload-Offset"] == "30"
    assert entry.media.get().is_ready, "the finished upload's photo is untouched"

    _age(cancelled_folder, 7200)  # the next hour
    chores.prune()
    assert folders() == [in_progress_folder]
    assert partial.is_dir(), "the prefix itself stays"
