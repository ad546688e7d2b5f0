"""The museum keeps its media in an S3-compatible bucket (BUCKET_NAME): uploads, originals
waiting for the worker, videos, posters and photos all live there, never under DATA_DIR.

Every assertion about what is stored goes through the bucket's own listing (tests/buckets.py),
against moto's S3 server over HTTP.
"""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.buckets import Bucket, S3Server
from tests.conftest import ROOT, subprocess_env, wait_for
from tests.worker_helpers import make_video, mid_transcode, post_clip, refused_over_the_cap
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia
from the_flip.apps.worker import chores
from the_flip.apps.worker.models import WorkerHeartbeat
from the_flip.media.errors import Code
from the_flip.storage import check_media_storage

pytestmark = pytest.mark.bucket


def upload(client, machine, clip: Path, content_type: str = "video/mp4") -> LogEntryMedia:
    return post_clip(client, machine, clip, content_type, "new flipper coil")


def fetch(url: str, **headers: str):
    """GET a URL the way a browser follows a redirect to the bucket: no cookies, no login."""
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_a_video_goes_up_to_the_bucket_is_transcoded_there_and_plays_from_it(
    bucket, consumer_factory, maintainer_client, machine, android_clip, settings
):
    media = upload(maintainer_client, machine, android_clip)
    # The original waits in the bucket, not on the web machine's disk.
    assert bucket.object_keys() == [media.file.name] and media.file.name.startswith("originals/")
    assert files_under(Path(settings.MEDIA_ROOT)) == []

    worker = consumer_factory()
    wait_for(
        lambda: media.refresh_from_db() or media.transcode_status in ("ready", "failed"),
        timeout=90,
        what="the worker to transcode the video from the bucket",
    )
    assert media.transcode_status == "ready", worker.log_path.read_text()[-3000:]
    # The original goes right after the ready write (never before it): then only the video and
    # its poster are there, typed for browsers.
    outputs = sorted([media.transcoded_file.name, media.poster_file.name])
    wait_for(lambda: bucket.object_keys() == outputs, timeout=10, what="only the outputs left")
    assert bucket.head(media.transcoded_file.name)["ContentType"] == "video/mp4"
    assert bucket.head(media.poster_file.name)["ContentType"] == "image/jpeg"
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    wait_for(
        lambda: files_under(Path(settings.TRANSCODE_WORK_DIR)) == [],
        timeout=10,
        what="the scratch files to be removed",
    )

    # The page's URLs stay on our host; they check the login, then send the browser on.
    body = maintainer_client.get(f"/api/media/{media.pk}/").json()
    assert body["video_url"] == f"/media/{media.transcoded_file.name}"
    assert body["poster_url"] == f"/media/{media.poster_file.name}"
    redirect = maintainer_client.get(body["video_url"])
    assert redirect.status_code == 302
    signed = redirect["Location"]
    assert signed.startswith(f"{bucket.server.endpoint}/{bucket.name}/videos/")
    assert "X-Amz-Signature=" in signed and "X-Amz-Expires=600" in signed

    # iOS asks for ranges: the bucket answers 206 with the right type.
    with fetch(signed, Range="bytes=0-99") as answer:
        assert answer.status == 206
        assert answer.headers["Content-Type"] == "video/mp4"
        assert answer.headers["Content-Range"].startswith("bytes 0-99/")
        assert len(answer.read()) == 100
    with fetch(maintainer_client.get(body["poster_url"])["Location"]) as poster:
        assert poster.headers["Content-Type"] == "image/jpeg"
        assert poster.read(3) == b"\xff\xd8\xff"

    # Without a login there is no redirect, so no signed URL.
    maintainer_client.logout()
    assert maintainer_client.get(body["video_url"]).status_code == 302
    assert "/accounts/login/" in maintainer_client.get(body["video_url"])["Location"]


def test_a_photo_is_stored_in_the_bucket_and_deleting_it_removes_the_object(
    bucket, maintainer_client, machine, photo, settings
):
    media = upload(maintainer_client, machine, photo, "image/jpeg")
    assert bucket.object_keys() == [media.file.name] and media.file.name.startswith("photos/")
    assert bucket.head(media.file.name)["ContentType"] == "image/jpeg"
    assert media.photo_url == f"/media/{media.file.name}"
    with fetch(maintainer_client.get(media.photo_url)["Location"]) as answer:
        assert answer.read(2) == b"\xff\xd8"

    assert maintainer_client.delete(f"/api/media/{media.pk}/").status_code == 200
    assert bucket.object_keys() == []
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_a_big_upload_streams_to_the_bucket_in_parts(bucket, maintainer_client, machine, settings):
    """Django spools the body to a temp file; the bucket gets it in 8 MiB parts (a multipart
    upload, whose ETag says how many), never as one 20 MB blob in memory."""
    body = os.urandom(20 * 1024 * 1024)
    response = maintainer_client.post(
        "/api/log-entries/",
        {"machine": machine.pk, "text": "long clip",
         "media": [SimpleUploadedFile("VID_LONG.mp4", body, "video/mp4")]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    media = LogEntryMedia.objects.get(pk=response.json()["media"][0]["id"])
    stored = bucket.head(media.file.name)
    assert stored["ContentLength"] == len(body)
    assert stored["ETag"].strip('"').endswith("-3"), stored["ETag"]  # 8 + 8 + 4 MiB
    assert stored["ContentType"] == "video/mp4"
    assert files_under(Path(settings.FILE_UPLOAD_TEMP_DIR)) == [], "the temp file is gone"


def test_originals_and_odd_names_are_never_signed(bucket, maintainer_client, machine, photo):
    media = upload(maintainer_client, machine, photo, "image/jpeg")
    for path in (
        "/media/originals/anything.mov",
        f"/media/photos/../{media.file.name}",
        "/media/partial/abc/000000000000-x",
    ):
        assert maintainer_client.get(path).status_code == 404, path


@pytest.mark.django_db
def test_the_worker_rechecks_the_size_cap_while_copying_from_the_bucket(bucket, machine, settings):
    """An object bigger than the cap (put there by other means, or the cap lowered since) is
    refused while it is copied to the scratch dir, not after."""
    media = refused_over_the_cap(machine, settings)
    assert files_under(Path(settings.TRANSCODE_WORK_DIR)) == [], "the partial copy is gone"
    assert bucket.object_keys() == [media.file.name], "the original is kept for a retry"


@pytest.mark.django_db
def test_the_orphan_chore_cleans_the_bucket_but_leaves_what_rows_and_other_chores_own(
    bucket, machine
):

    media = make_video(machine)  # its original is an object in the bucket
    put = {"Bucket": bucket.name, "Body": b"x"}
    bucket.client.put_object(Key="videos/2026/01/orphan.mp4", **put)
    bucket.client.put_object(Key="partial/0b1c/000000000000-token", **put)  # a tus upload
    # A fresh orphan may be an upload whose row is being saved right now: left for later.
    assert chores.remove_orphaned_files() == []
    assert chores.remove_orphaned_files(min_age=0) == ["videos/2026/01/orphan.mp4"]
    assert bucket.object_keys() == sorted([media.file.name, "partial/0b1c/000000000000-token"])


_SLOW_UPLOAD = """
import io, time
from django.core.files import File
from django.core.files.storage import default_storage

class PhoneOnBadWifi(io.RawIOBase):
    # 20 MB that arrive quickly at first, then never: the process is killed meanwhile.
    size, sent = 20 * 1024 * 1024, 0
    def readable(self):
        return True
    def readinto(self, buffer):
        if self.sent >= 12 * 1024 * 1024:
            print("stalled", flush=True)
            time.sleep(600)
        n = min(len(buffer), self.size - self.sent)
        buffer[:n] = b"v" * n
        self.sent += n
        return n

default_storage.save("originals/2026/12/crash.mov", File(PhoneOnBadWifi(), name="crash.mov"))
"""


@pytest.mark.django_db
def test_a_crash_mid_upload_leaves_nothing_the_orphan_chore_does_not_remove(bucket, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", _SLOW_UPLOAD],
        cwd=ROOT,
        env=subprocess_env(DATA_DIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(bucket.unfinished_uploads, timeout=60, what="a multipart upload to start")
        wait_for(lambda: "stalled" in process.stdout.readline(), timeout=60, what="the stall")
    finally:
        process.send_signal(signal.SIGKILL)  # like the OOM killer: no clean-up code runs
        process.wait(timeout=10)
    assert bucket.unfinished_uploads() == ["originals/2026/12/crash.mov"]
    assert bucket.object_keys() == []  # invisible in listings, yet stored (and billed)

    assert chores.remove_orphaned_files() == [], "an upload under way is not touched"
    removed = chores.remove_orphaned_files(min_age=0)
    assert removed == ["originals/2026/12/crash.mov (unfinished upload)"]
    assert bucket.unfinished_uploads() == []


# --- The file store stops answering --------------------------------------------------------


@pytest.fixture
def flaky_bucket(settings, monkeypatch):
    """A bucket on an S3 server of its own, which the test may stop and start again."""
    server = S3Server().start()
    media_bucket = Bucket(server)
    for name, value in media_bucket.env.items():
        monkeypatch.setenv(name, value)
    settings.BUCKET_NAME = media_bucket.name
    settings.STORAGES = {**settings.STORAGES, "default": media_bucket.storage_setting()}
    settings.STORAGE_HEALTH_CACHE_SECONDS = 0
    yield media_bucket
    if server._server is None:
        server.start()
    media_bucket.empty()
    server.stop()


def test_the_form_without_javascript_says_the_store_is_down_and_saves_nothing(
    flaky_bucket, maintainer_client, machine, photo
):
    flaky_bucket.server.stop()
    response = maintainer_client.post(
        f"/machines/{machine.slug}/log/new/",
        {"text": "flipper rebuild", "idempotency_key": "form-1",
         "media": [SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg")]},
    )  # fmt: skip
    assert response.status_code == 503
    assert "The file store did not answer, so nothing was saved." in response.content.decode()
    assert not LogEntry.objects.exists() and not LogEntryMedia.objects.exists()


def test_an_upload_while_the_bucket_is_down_answers_503_and_saves_nothing(
    flaky_bucket, maintainer_client, machine, photo, client, capsys
):
    from django.core.management import call_command

    flaky_bucket.server.stop()
    response = maintainer_client.post(
        "/api/log-entries/",
        {"machine": machine.pk, "text": "flipper rebuild",
         "media": [SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg")]},
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json()["error"].startswith("The file store did not answer, so nothing")
    assert response["Retry-After"] == "60"
    assert not LogEntryMedia.objects.exists()
    # The platform's health check says so too.
    down = client.get("/healthz").json()
    assert down["status"] == "error" and down["storage"] == "unreachable"
    assert "storage unreachable" in down["reason"]
    assert "127.0.0.1" not in down["reason"], "no endpoint for strangers; check_worker has it"
    with pytest.raises(SystemExit):
        call_command("check_worker")
    assert f"The file store at {flaky_bucket.server.endpoint} did not answer" in (
        capsys.readouterr().err
    )

    flaky_bucket.server.start()
    assert upload(maintainer_client, machine, photo, "image/jpeg").photo_url


@pytest.fixture(scope="session")
def hevc_clip(media_dir) -> Path:
    """An iPhone clip whose transcode lasts several seconds even on a quiet machine, so the plug
    is pulled while ffmpeg runs (8 s of video converted in about a second: CI saw the video
    ready before the store went away)."""
    from tests import clips

    return clips.iphone_hevc_mov(media_dir / "IMG_0008.MOV", size="320x180", seconds=40)


@pytest.mark.slow
def test_the_bucket_stops_answering_during_a_transcode_and_the_video_still_ends_ready(
    flaky_bucket, consumer_factory, maintainer_client, machine, hevc_clip, client
):
    from the_flip.apps.worker import health

    STORE_DOWN_MESSAGE = Code.STORE_UNAVAILABLE.reason()
    media = upload(maintainer_client, machine, hevc_clip, "video/quicktime")
    worker = consumer_factory(STORAGE_RETRY_SECONDS="2")
    mid_transcode(media)
    flaky_bucket.server.stop()  # ffmpeg goes on in the scratch dir; storing the outputs fails

    def waiting_for_the_store():
        media.refresh_from_db()
        return media.transcode_status == "pending" and media.error == STORE_DOWN_MESSAGE

    wait_for(waiting_for_the_store, timeout=90, what="the video to wait for the store")
    assert media.attempts == 0, "the store's outage is not the video's fault"
    # The maintainer's page does not call it failed; the admin says why it waits.
    assert maintainer_client.get(f"/api/media/{media.pk}/").json()["error"] is None
    admin = Client()
    admin.force_login(
        get_user_model().objects.create_superuser("grace", password="tilt-tilt-tilt-1")
    )
    listing = admin.get("/admin/maintenance/logentrymedia/")
    assert STORE_DOWN_MESSAGE in listing.content.decode()
    # /healthz tells the platform too, instead of claiming ok.
    health.touch()
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["storage"] == "unreachable"
    assert "storage unreachable" in down.json()["reason"]
    assert worker.poll() is None, "the worker keeps running"

    flaky_bucket.server.start()  # same port, objects kept (as a real bucket's are)
    wait_for(
        lambda: media.refresh_from_db() or media.transcode_status == "ready",
        timeout=120,
        what="the video to be transcoded once the store is back",
    )
    assert media.attempts == 1 and media.error == ""
    outputs = sorted([media.transcoded_file.name, media.poster_file.name])
    wait_for(lambda: flaky_bucket.object_keys() == outputs, timeout=10, what="only the outputs")
    assert client.get("/healthz").json()["storage"] == "ok"


# --- Bad configuration is reported at start ------------------------------------------------


def messages() -> list[str]:
    return [message.msg for message in check_media_storage() if message.level >= 40]


def test_check_names_a_missing_credential(bucket, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    (problem,) = messages()
    assert "no credentials were found" in problem and "AWS_ACCESS_KEY_ID" in problem


def test_check_names_a_bucket_that_does_not_exist(bucket, settings):
    options = {**settings.STORAGES["default"]["OPTIONS"], "bucket_name": "no-such-bucket"}
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"],
                                                          "OPTIONS": options}}  # fmt: skip
    (problem,) = messages()
    assert "The bucket 'no-such-bucket' does not exist" in problem


def test_check_names_an_endpoint_that_does_not_answer(bucket, settings):
    from tests.live_stack import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    options = {**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": nobody}
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"],
                                                          "OPTIONS": options}}  # fmt: skip
    (problem,) = messages()
    assert f"The file store at {nobody} did not answer" in problem
    assert "AWS_ENDPOINT_URL_S3" in problem


def test_manage_py_check_fails_with_the_sentence_and_passes_on_a_good_bucket(
    bucket, tmp_path, transactional_db
):
    def check(**env):
        return subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env={**subprocess_env(DATA_DIR=str(tmp_path)), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = check()
    assert good.returncode == 0, good.stderr
    bad = check(BUCKET_NAME="a-bucket-nobody-made")
    assert bad.returncode != 0
    assert "The bucket 'a-bucket-nobody-made' does not exist" in bad.stderr
    # The worker starts anyway (a store that is down for a minute must not stop it).
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"],
        cwd=ROOT,
        env={**subprocess_env(DATA_DIR=str(tmp_path)), "BUCKET_NAME": "a-bucket-nobody-made"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Its heartbeat row is written once it is past its start-up checks.
        started = WorkerHeartbeat.objects.filter(pid=worker.pid)
        wait_for(
            lambda: worker.poll() is not None or started.exists(),
            timeout=60, what="the worker to start",
        )  # fmt: skip
        assert worker.poll() is None
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)


def test_with_the_bucket_not_answering_only_the_start_checks_stop_nginx_and_check_worker_go_on(
    bucket, tmp_path, transactional_db
):
    """The file store stops answering while the site runs. supervisord restarts nginx now and
    then (nginx never touches the bucket), and the operator runs check_worker to learn what is
    wrong: neither may die of the bucket's system check. `manage.py check` (what `make run`
    and the web's start run) still stops with the sentence."""
    from tests.live_stack import free_port

    nobody = f"http://127.0.0.1:{free_port()}"

    def manage(*args: str):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(DATA_DIR=str(tmp_path), AWS_ENDPOINT_URL_S3=nobody),
            capture_output=True,
            text=True,
            timeout=60,
        )

    check = manage("check")
    assert check.returncode != 0
    assert f"The file store at {nobody} did not answer" in check.stderr

    nginx = manage("run_nginx", "--print")
    assert nginx.returncode == 0, nginx.stderr
    assert "proxy_pass http://django;" in nginx.stdout

    report = manage("check_worker")
    assert "SystemCheckError" not in report.stderr
    storage_line = [line for line in report.stdout.splitlines() if line.startswith("storage:")]
    assert storage_line and storage_line[0].split() == ["storage:", "unreachable"], report.stdout
    assert "UNHEALTHY: storage unreachable" in report.stderr
    assert f"The file store at {nobody} did not answer" in report.stderr
    assert report.returncode == 1  # unhealthy, by design (0 healthy, 2 no database)

    # What the worker's container start runs (docker/entrypoint, ROLE=worker) before the
    # worker itself: the web role checks the bucket at its start, the worker waits it out.
    assert manage("migrate", "--check", "--skip-checks").returncode == 0
    assert manage("setup_queue", "--skip-checks").returncode == 0


@pytest.mark.parametrize(
    "app, command",
    [("maintenance", "run_nginx"), ("worker", "check_worker"), ("worker", "run_worker")],
)
def test_the_commands_that_skip_the_bucket_check_still_run_every_other_check(app, command):
    """Skipping the bucket's check skips nothing else: a broken setting still stops these
    commands, even one whose check has no tag (django.contrib.auth and axes register such)."""
    from django.core import checks
    from django.core.checks.registry import registry
    from django.core.management import load_command_class
    from django.core.management.base import SystemCheckError

    def broken_setting(app_configs=None, **kwargs):
        return [checks.Error("a broken setting", id="tests.E001")]

    checks.register(broken_setting)
    try:
        found = load_command_class(f"the_flip.apps.{app}", command)
        with pytest.raises(SystemCheckError, match="a broken setting"):
            found.check(**found.get_check_kwargs({}))  # as BaseCommand.execute() does
    finally:
        registry.registered_checks.discard(broken_setting)


# --- Moving a one-volume install into a bucket ---------------------------------------------


def test_copy_media_to_bucket_moves_a_one_volume_install_and_is_safe_to_run_twice(
    bucket, settings, capsys
):
    from django.core.management import call_command

    old = {
        "videos/2025/06/3f2a.mp4": b"\x00\x00\x00\x18ftypmp42" + b"v" * 300_000,
        "posters/2025/06/3f2a.jpg": b"\xff\xd8\xff" + b"p" * 2_000,
        "photos/2025/07/9b1c.jpg": b"\xff\xd8\xff" + b"f" * 5_000,
    }
    for name, content in old.items():
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    call_command("copy_media_to_bucket", "--dry-run")
    assert "would copy 3, 0 already in the bucket, 0 failed" in capsys.readouterr().out
    assert bucket.object_keys() == []

    call_command("copy_media_to_bucket")
    assert "copied 3" in capsys.readouterr().out
    assert bucket.object_keys() == sorted(old)
    for name, content in old.items():
        assert bucket.head(name)["ContentLength"] == len(content)
    assert bucket.head("videos/2025/06/3f2a.mp4")["ContentType"] == "video/mp4"

    # A second run (or one after an interruption) copies only what is missing or different.
    bucket.client.put_object(Bucket=bucket.name, Key="photos/2025/07/9b1c.jpg", Body=b"cut")
    call_command("copy_media_to_bucket")
    out = capsys.readouterr().out
    assert "copied 1 " in out and "2 already in the bucket, 0 failed" in out
    assert bucket.head("photos/2025/07/9b1c.jpg")["ContentLength"] == len(
        old["photos/2025/07/9b1c.jpg"]
    )
    assert all((Path(settings.MEDIA_ROOT) / name).exists() for name in old), "nothing deleted"
