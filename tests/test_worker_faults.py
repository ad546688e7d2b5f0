"""Faults with real processes: kill -9 mid-transcode, SIGTERM mid-transcode (a deploy), a
media disk refusing the output, the database restarting under an idle worker, and recycling
under a real supervisord.

The signal stories use a 20 s 640x360 HEVC clip that takes several seconds to transcode, so
the signal lands while ffmpeg runs."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import clips
from tests.conftest import ROOT, descendants, require, subprocess_env, wait_for
from tests.worker_helpers import mid_transcode, post_clip
from the_flip.apps.maintenance import attachments
from the_flip.apps.maintenance.models import LogEntryMedia
from the_flip.apps.worker.models import TaskRecord

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def long_clip(media_dir) -> Path:
    return clips.iphone_hevc_mov(media_dir / "IMG_LONG.MOV", size="640x360", seconds=20)


def upload(client, machine, clip: Path) -> LogEntryMedia:
    return post_clip(client, machine, clip, "video/quicktime", "fault test")


def ffmpeg_running() -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            if argv[0] == b"ffmpeg" and any(b"/original." in arg for arg in argv):
                return True
        except OSError:
            continue
    return False


def log_of(process) -> str:
    return process.log_path.read_text()[-3000:]


def test_kill_9_mid_transcode_then_restart_ends_ready(
    consumer_factory, maintainer_client, machine, long_clip
):
    first = consumer_factory()
    media = mid_transcode(upload(maintainer_client, machine, long_clip))
    original = Path(media.file.path)
    # Like the OOM killer: the consumer and its ffmpeg die at once, no goodbye.
    for pid in [first.pid, *descendants(first.pid)]:
        os.kill(pid, signal.SIGKILL)
    first.wait(timeout=10)
    media.refresh_from_db()
    assert media.transcode_status == "processing" and media.attempts == 1
    assert original.exists(), "the original stays until success"

    second = consumer_factory()
    wait_for(
        lambda: media.refresh_from_db() or media.transcode_status in ("ready", "failed"),
        timeout=90,
        what="the video to be finished by the new worker",
    )
    assert media.transcode_status == "ready", log_of(second)
    assert media.attempts == 2

    def task_log():
        states = list(TaskRecord.objects.filter(media=media).order_by("id").values_list("state"))
        return states if states and states[-1] != ("running",) else None

    # The run's record is closed (and the original deleted) just after the ready write.
    states = wait_for(task_log, timeout=10, what="the task log to close the second run")
    assert states[0] == ("interrupted",) and states[-1] == ("succeeded",), states
    assert not original.exists() and Path(media.transcoded_file.path).exists()


def test_sigterm_mid_transcode_requeues_and_the_next_worker_finishes(
    consumer_factory, maintainer_client, machine, long_clip
):
    first = consumer_factory()
    media = mid_transcode(upload(maintainer_client, machine, long_clip))
    stopped_at = time.monotonic()
    os.kill(first.pid, signal.SIGTERM)
    assert first.wait(timeout=20) == 0, log_of(first)
    took = time.monotonic() - stopped_at
    assert took < 10, f"the worker took {took:.1f} s to stop (supervisord waits 25 s)"
    media.refresh_from_db()
    assert media.transcode_status == "pending", log_of(first)
    assert media.attempts == 0, "a graceful stop does not count as an attempt"
    assert Path(media.file.path).exists()
    assert not ffmpeg_running(), "ffmpeg was stopped with the worker"
    from the_flip.apps.worker.queue import queued_media_ids

    assert queued_media_ids() == {media.pk}, "re-enqueued"
    assert TaskRecord.objects.filter(media=media, state="interrupted").exists()

    second = consumer_factory()
    wait_for(
        lambda: media.refresh_from_db() or media.transcode_status in ("ready", "failed"),
        timeout=90,
        what="the video to be finished after the restart",
    )
    assert media.transcode_status == "ready", log_of(second)
    assert media.attempts == 1


def test_an_unexpected_error_mid_transcode_puts_the_video_back_and_attempts_still_run_out(
    consumer_factory, maintainer_client, machine, android_clip, settings
):
    """The media disk refuses the converted video (an OSError none of the expected endings
    covers; here `videos` is a file where the folder should be, a real NotADirectoryError
    from the save). The live worker must not keep the video `processing` for good (the stale
    reset never takes a video from a live worker): it goes back in line with the attempt
    counted, the every-minute reset queues it again, and after 3 such attempts it fails with
    the usual sentence, original kept. Once the disk is fixed, Retry converts it."""
    from the_flip.apps.worker import tasks
    from the_flip.media.errors import Code

    videos = Path(settings.MEDIA_ROOT) / "videos"
    videos.write_bytes(b"not a folder")
    settings.TRANSCODE_REQUEUE_PENDING_SECONDS = 0  # the reset below: no minute's wait
    # The worker's own every-minute reset stays out of the way: this test runs each one.
    worker = consumer_factory(TRANSCODE_REQUEUE_PENDING_SECONDS="3600")
    media = post_clip(maintainer_client, machine, android_clip, "video/mp4", "disk fault")
    original = Path(media.file.path)

    def failed_runs(count: int):
        def done():
            media.refresh_from_db()
            runs = TaskRecord.objects.filter(media=media, state="failed")
            return media.transcode_status == "pending" and runs.count() == count

        wait_for(done, timeout=60, what=f"failed run {count} to be recorded")

    for attempt in (1, 2, 3):
        failed_runs(attempt)
        assert media.attempts == attempt, "an error of ours counts as an attempt"
        # The admin says why it waits; the maintainer's page does not call it failed.
        assert media.error == Code.WORKER_ERROR.reason()
        assert maintainer_client.get(f"/api/media/{media.pk}/").json()["error"] is None
        assert original.exists() and worker.poll() is None, log_of(worker)
        # The task log says the run failed, and with what.
        run = TaskRecord.objects.filter(media=media, state="failed").latest("id")
        assert run.error.startswith("NotADirectoryError: "), run.error
        if attempt < 3:
            assert tasks.requeue_stale_transcodes() == {"requeued": 1, "gave_up": 0}
    assert tasks.requeue_stale_transcodes() == {"requeued": 0, "gave_up": 1}
    media.refresh_from_db()
    assert media.transcode_status == "failed" and media.attempts == 3
    gave_up = "We tried 3 times and could not process this video."
    assert maintainer_client.get(f"/api/media/{media.pk}/").json()["error"] == gave_up
    assert original.exists(), "the original is kept for a retry"

    videos.unlink()  # the disk is fixed
    assert attachments.retry(media)  # autocommit here: enqueued at once
    wait_for(
        lambda: media.refresh_from_db() or media.transcode_status in ("ready", "failed"),
        timeout=60,
        what="the retried video to be finished",
    )
    assert media.transcode_status == "ready", log_of(worker)
    assert media.attempts == 1 and media.error == ""
    assert Path(media.transcoded_file.path).exists()


def test_recycles_after_n_tasks_under_supervisord(
    transactional_db, consumer_factory, machine, android_clip, tmp_path, settings
):
    from django.core.files.base import ContentFile

    from the_flip.apps.maintenance.models import LogEntry

    supervisord = Path(sys.executable).parent / "supervisord"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"""[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[unix_http_server]
file={tmp_path}/supervisor.sock
[program:worker]
command={sys.executable} manage.py run_worker
directory={ROOT}
autorestart=true
startsecs=3
stopsignal=TERM
stopwaitsecs=25
stdout_logfile={tmp_path}/worker.log
redirect_stderr=true
"""
    )
    env = subprocess_env(WORKER_MAX_TASKS="2", WORKER_MIN_LIFETIME="4")
    sup = subprocess.Popen(
        [str(supervisord), "-c", str(conf)], env=env, cwd=ROOT, start_new_session=True
    )
    try:
        entry = LogEntry.objects.create(machine=machine, text="recycling")
        videos = []
        for _ in range(3):
            media = LogEntryMedia(log_entry=entry, kind="video", original_name="a.mp4")
            media.file.save("a.mp4", ContentFile(android_clip.read_bytes()), save=False)
            media.save()
            attachments.request_transcode(media)  # autocommit here: enqueued at once
            videos.append(media)

        def all_ready():
            return all(
                LogEntryMedia.objects.get(pk=m.pk).transcode_status == "ready" for m in videos
            )

        wait_for(all_ready, timeout=90, what="three videos through a recycling worker")
        pids = list(
            TaskRecord.objects.filter(media__in=videos)
            .order_by("started_at")
            .values_list("worker_pid", flat=True)
        )
        assert pids[0] == pids[1] != pids[2], (pids, (tmp_path / "worker.log").read_text())
        assert (
            "tasks done; exiting so a fresh process takes over"
            in (tmp_path / "worker.log").read_text()
        )
        # And supervisord's stop (TERM, like a deploy) ends the worker well within stopwaitsecs.
        started = time.monotonic()
        sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=30)
        assert time.monotonic() - started < 10
    finally:
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()


# --- PostgreSQL going away and coming back -------------------------------------------------

FAULTS_PORT = 5433


def _pg_tools() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("pg_ctlcluster") and shutil.which("psql"))


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["su", "postgres", "-c", " ".join(command)], capture_output=True, text=True, timeout=60
    )


def _pg_version() -> str:
    return sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v))[-1]


@pytest.fixture
def faults_cluster():
    """A PostgreSQL cluster of our own on port 5433, which this test may stop and start."""
    require(_pg_tools(), "PostgreSQL server tools (pg_ctlcluster, as root)")
    version = _pg_version()
    if f"{version} faults" not in subprocess.run(["pg_lsclusters", "-h"], capture_output=True,
                                                 text=True).stdout.replace("  ", " "):  # fmt: skip
        subprocess.run(["pg_createcluster", version, "faults", "--port", str(FAULTS_PORT)],
                       check=True, capture_output=True)  # fmt: skip
    subprocess.run(["pg_ctlcluster", version, "faults", "start"], capture_output=True)
    _as_postgres("psql", "-p", str(FAULTS_PORT), "-q", "-c",
                 "\"CREATE ROLE ci SUPERUSER LOGIN PASSWORD 'ci'\"")  # fmt: skip
    _as_postgres("dropdb", "-p", str(FAULTS_PORT), "--if-exists", "faults")
    created = _as_postgres("createdb", "-p", str(FAULTS_PORT), "-O", "ci", "faults")
    assert created.returncode == 0, created.stderr
    yield version
    subprocess.run(["pg_ctlcluster", version, "faults", "start"], capture_output=True)
    _as_postgres("dropdb", "-p", str(FAULTS_PORT), "--if-exists", "faults")


_SHELL_UPLOAD = """
from django.core.files.base import ContentFile
from the_flip.apps.catalog.models import Machine
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia
machine, _ = Machine.objects.get_or_create(name="Fault Machine")
entry = LogEntry.objects.create(machine=machine, text="db restart")
media = LogEntryMedia(log_entry=entry, kind="video", original_name="a.mp4")
media.file.save("a.mp4", ContentFile(open({clip!r}, "rb").read()), save=False)
media.save()
from the_flip.apps.maintenance.attachments import request_transcode
request_transcode(media)
print(media.pk)
"""


@pytest.mark.postgres
def test_worker_survives_a_postgres_restart(faults_cluster, android_clip, tmp_path):
    import psycopg

    url = f"postgres://ci:ci@127.0.0.1:{FAULTS_PORT}/faults"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.test",
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "WORKER_MAX_TASKS": "0",
    }
    env.pop("THE_FLIP_TEST_DB_NAME", None)
    env.pop("THE_FLIP_TEST_MEDIA_ROOT", None)

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def upload_and_wait(what: str) -> None:
        pk = int(manage("shell", "-c", _SHELL_UPLOAD.format(clip=str(android_clip))).split()[-1])

        def status():
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "select transcode_status from maintenance_logentrymedia where id = %s", (pk,)
                ).fetchone()
            return row[0] if row[0] in ("ready", "failed") else None

        assert wait_for(status, timeout=60, interval=0.2, what=what) == "ready"

    manage("migrate", "--noinput", "-v0")
    manage("setup_queue", "-v0")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "manage.py", "run_worker"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        upload_and_wait("a video before the restart")
        version = faults_cluster
        subprocess.run(["pg_ctlcluster", version, "faults", "stop", "-m", "fast"], check=True)
        time.sleep(2)  # the idle worker now fails to reach its queue, and keeps trying
        subprocess.run(["pg_ctlcluster", version, "faults", "start"], check=True)
        upload_and_wait("a video after the restart")
        assert worker.poll() is None, log_path.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
