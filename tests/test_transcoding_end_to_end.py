"""The whole trip: a maintainer uploads an iPhone video and a photo through the JSON API, a real
huey consumer transcodes the video, and what comes out plays in every browser."""

import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests import clips
from tests.conftest import wait_for
from the_flip.apps.maintenance.models import LogEntryMedia

pytestmark = pytest.mark.slow


def test_ffmpeg_and_ffprobe_are_on_path_and_run():
    for tool in ("ffmpeg", "ffprobe"):
        out = subprocess.run([tool, "-version"], capture_output=True, text=True, check=True).stdout
        assert out.startswith(f"{tool} version")


def test_check_ffmpeg_prints_versions_and_exits_zero():
    result = subprocess.run(
        [".venv/bin/python" if Path(".venv/bin/python").exists() else "python", "manage.py",
         "check_ffmpeg"],
        capture_output=True, text=True, env={**__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.test"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ffmpeg: " in result.stdout and "ffprobe: " in result.stdout


def test_check_ffmpeg_fails_when_ffmpeg_is_missing(settings):
    from django.core.management import CommandError, call_command

    settings.TRANSCODE_LIMITS = type(settings.TRANSCODE_LIMITS)(ffmpeg="/nonexistent/ffmpeg")
    with pytest.raises(CommandError):
        call_command("check_ffmpeg")


def test_iphone_video_and_photo_end_ready_and_playable(
    huey_consumer, maintainer_client, machine, iphone_clip, photo, settings
):
    response = maintainer_client.post(
        "/api/log-entries/",
        {
            "machine": machine.pk,
            "text": "New flipper rubbers; left one was torn",
            "media": [
                SimpleUploadedFile(iphone_clip.name, iphone_clip.read_bytes(), "video/quicktime"),
                SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg"),
            ],
        },
    )
    assert response.status_code == 201, response.content
    video, picture = response.json()["media"]
    assert picture["status"] == "ready"
    assert video["status"] in ("pending", "processing")
    original = Path(LogEntryMedia.objects.get(pk=video["id"]).file.path)
    assert original.exists()

    seen = set()

    def finished():
        body = maintainer_client.get(video["url"]).json()
        seen.add(body["status"])
        return body if body["status"] in ("ready", "failed") else None

    body = wait_for(finished, timeout=120, interval=0.1, what="the video to be processed")
    assert body["status"] == "ready", (body, huey_consumer.log_path.read_text()[-3000:])
    assert "processing" in seen or "pending" in seen
    assert body["progress"] == 100
    assert body["duration"] == pytest.approx(2.0, abs=0.2)
    assert body["error"] is None

    media = LogEntryMedia.objects.get(pk=video["id"])
    output = Path(media.transcoded_file.path)
    info = clips.ffprobe(output)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert v["codec_name"] == "h264" and v["profile"] == "Main" and v["pix_fmt"] == "yuv420p"
    assert max(v["width"], v["height"]) <= 2400
    assert a["codec_name"] == "aac"
    assert clips.moov_before_mdat(output)

    with Image.open(media.poster_file.path) as poster:
        assert poster.format == "JPEG" and poster.width == 320

    assert not original.exists(), "the original is deleted after success"
    assert maintainer_client.get(body["video_url"], HTTP_RANGE="bytes=0-99").status_code == 206
    assert maintainer_client.get(body["poster_url"]).status_code == 200


def test_a_text_file_named_mov_fails_with_a_plain_reason_and_the_worker_carries_on(
    huey_consumer, maintainer_client, machine, android_clip
):
    entry = maintainer_client.post(
        "/api/log-entries/", {"machine": machine.pk, "text": "two videos"}
    ).json()
    bogus = maintainer_client.post(
        f"/api/log-entries/{entry['id']}/media/",
        {"file": SimpleUploadedFile("IMG_9.MOV", b"this is not a video\n" * 50, "video/quicktime")},
    ).json()
    good = maintainer_client.post(
        f"/api/log-entries/{entry['id']}/media/",
        {"file": SimpleUploadedFile(android_clip.name, android_clip.read_bytes(), "video/mp4")},
    ).json()

    def status(media):
        body = maintainer_client.get(media["url"]).json()
        return body if body["status"] in ("ready", "failed") else None

    bad_body = wait_for(lambda: status(bogus), timeout=60, what="the bogus file to fail")
    good_body = wait_for(lambda: status(good), timeout=120, what="the good video")
    assert bad_body["status"] == "failed"
    assert "not a video we can read" in bad_body["error"]
    assert good_body["status"] == "ready"
    assert huey_consumer.poll() is None, "the worker survived"
