"""Shared fixtures: a maintainer, a machine, generated media, and a real huey consumer."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import clips
from tests.worker_helpers import flush_queue

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(available: bool, what: str) -> None:
    """Skip a test whose service is missing; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{what} is not available here")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def iphone_clip(media_dir) -> Path:
    return clips.iphone_hevc_mov(media_dir / "IMG_0001.MOV")


@pytest.fixture(scope="session")
def android_clip(media_dir) -> Path:
    return clips.android_h264_mp4(media_dir / "VID_20260101.mp4")


@pytest.fixture(scope="session")
def photo(media_dir) -> Path:
    return clips.photo_jpeg(media_dir / "IMG_0002.JPG")


@pytest.fixture(autouse=True)
def isolated_media(settings, tmp_path):
    """Each test stores files in its own folder, so "nothing left on disk" means just that."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "uploads"
    settings.TRANSCODE_WORK_DIR = tmp_path / "transcode"
    for folder in (settings.MEDIA_ROOT, settings.FILE_UPLOAD_TEMP_DIR):
        folder.mkdir()


@pytest.fixture
def maintainer(django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password="flippers-and-coils", is_staff=True
    )


@pytest.fixture
def maintainer_client(client, maintainer):
    client.force_login(maintainer)
    return client


@pytest.fixture
def machine(db):
    from the_flip.apps.catalog.models import Machine

    return Machine.objects.create(name="Eight Ball Deluxe")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The huey queue lives in the test database too (PostgreSQL: `test_<name>`, see
    the_flip/apps/worker/queue.py): create its tables once the database exists."""
    from huey.contrib.djhuey import HUEY

    with django_db_blocker.unblock():
        HUEY.storage.initialize_schema()
    yield
    HUEY.storage.close()  # else PostgreSQL refuses to drop the test database


def subprocess_env(**extra: str) -> dict:
    """What a subprocess (consumer, gunicorn) needs to follow this test: its database and
    media folder."""
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.test",
        "DATA_DIR": str(settings.DATA_DIR),
        "THE_FLIP_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "THE_FLIP_TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
        "WORKER_MAX_TASKS": "0",  # no supervisord here to start a fresh one
        **extra,
    }


def stop_process(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def consumer_factory(transactional_db):
    """Start real `manage.py run_worker` processes on the test database (each call one more);
    all are stopped after the test. ``process.log_path`` holds its output."""
    flush_queue()  # tasks left over from an earlier test would refer to rows gone now
    started = []

    def start(**extra_env):
        log_path = Path(settings.DATA_DIR) / f"consumer-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker"],
                cwd=ROOT,
                env=subprocess_env(**extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process(process)


@pytest.fixture
def huey_consumer(consumer_factory):
    """A real `manage.py run_worker` process on the test database, stopped after the test."""
    return consumer_factory()


def descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (children, their children...), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found += [child, *descendants(child)]
    return found


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def ffmpeg_available() -> bool:
    return bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))


# --- Media in an S3-compatible bucket (moto's server over HTTP; see tests/buckets.py) ------


@pytest.fixture(scope="session")
def s3_server():
    from tests.buckets import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server, settings, monkeypatch):
    """This test keeps its media in a fresh bucket: the test process (settings) and every
    subprocess it starts (environment, read by settings/base.py)."""
    from tests.buckets import Bucket

    media_bucket = Bucket(s3_server)
    for name, value in media_bucket.env.items():
        monkeypatch.setenv(name, value)
    settings.BUCKET_NAME = media_bucket.name
    settings.STORAGES = {**settings.STORAGES, "default": media_bucket.storage_setting()}
    yield media_bucket
    media_bucket.empty()
