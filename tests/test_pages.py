"""The pages a maintainer sees on their phone (server-rendered; the browser tests drive them)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from the_flip.apps.catalog.models import Machine
from the_flip.apps.maintenance.models import LogEntry

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client, machine):
    for url in ("/", machine.get_absolute_url(), f"/machines/{machine.slug}/log/new/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_login_page_has_the_standard_fields(client):
    page = client.get("/accounts/login/").content.decode()
    for field in ('name="username"', 'name="password"', 'name="csrfmiddlewaretoken"'):
        assert field in page


def test_maintainer_adds_a_machine_and_opens_its_page(maintainer_client):
    response = maintainer_client.post("/", {"name": "Twilight Zone"})
    assert response.status_code == 302 and response["Location"] == "/machines/twilight-zone/"
    page = maintainer_client.get("/machines/twilight-zone/").content.decode()
    assert "Twilight Zone" in page and "New log entry" in page


def test_new_entry_form_accepts_photos_and_videos(maintainer_client, machine):
    page = maintainer_client.get(f"/machines/{machine.slug}/log/new/").content.decode()
    assert 'accept="image/*,video/*"' in page and "multiple" in page


def test_the_form_works_without_javascript_too(maintainer_client, machine, photo):
    response = maintainer_client.post(
        f"/machines/{machine.slug}/log/new/",
        {
            "text": "Adjusted tilt bob",
            "media": SimpleUploadedFile(photo.name, photo.read_bytes(), "image/jpeg"),
        },
    )
    entry = LogEntry.objects.get()
    assert response["Location"] == f"/logs/{entry.pk}/"
    page = maintainer_client.get(f"/logs/{entry.pk}/").content.decode()
    assert "Adjusted tilt bob" in page and "<img" in page


def test_a_processing_video_shows_processing_after_a_reload(maintainer_client, machine):
    entry = LogEntry.objects.create(machine=machine, text="coil")
    entry.media.create(kind="video", transcode_status="processing", progress=41)
    page = maintainer_client.get(f"/logs/{entry.pk}/").content.decode()
    assert "Processing… 41%" in page
    assert 'data-status="processing"' in page


def test_a_failed_video_shows_its_reason(maintainer_client, machine):
    entry = LogEntry.objects.create(machine=machine)
    entry.media.create(kind="video", transcode_status="failed", error="This video is too long.")
    page = maintainer_client.get(f"/logs/{entry.pk}/").content.decode()
    assert "This video is too long." in page


def test_healthz_says_when_the_worker_has_never_reported(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_healthz_is_ok_with_a_fresh_heartbeat(client):
    from the_flip.apps.worker import health

    health.touch()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_too_long_machine_name_is_refused_on_the_page_too(maintainer_client):
    response = maintainer_client.post("/", {"name": "X" * 201}, follow=True)
    assert "too long" in response.content.decode()
    assert not Machine.objects.exists()


def test_the_form_refuses_an_eleventh_file_like_the_api(maintainer_client, machine, photo):
    """Eleven files are refused with a reason, not silently cut to ten."""
    files = [
        SimpleUploadedFile(f"IMG_{i}.JPG", photo.read_bytes(), "image/jpeg") for i in range(11)
    ]
    response = maintainer_client.post(
        f"/machines/{machine.slug}/log/new/", {"text": "many photos", "media": files}
    )
    assert response.status_code == 400
    assert "Attach at most 10 files at once." in response.content.decode()
    assert not LogEntry.objects.exists()


def test_the_page_gets_its_upload_rules_from_the_server(maintainer_client, machine, settings):
    """uploader.js checks a file before sending it with the server's own lists and caps."""
    import html
    import json
    import re

    from the_flip.apps.maintenance import uploads

    settings.MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    entry = LogEntry.objects.create(machine=machine)
    for url in (f"/machines/{machine.slug}/log/new/", f"/logs/{entry.pk}/"):
        page = maintainer_client.get(url).content.decode()
        (raw,) = re.findall(r'data-upload-rules="([^"]*)"', page)
        rules = json.loads(html.unescape(raw))
        accepted = {f".{ext}" for ext in rules["extensions"]}
        assert accepted == uploads.PHOTO_EXTENSIONS | uploads.VIDEO_EXTENSIONS
        assert rules["max_bytes"] == 3 * 1024 * 1024
        assert rules["max_files"] == uploads.MAX_FILES_PER_REQUEST
        too_large = rules["messages"]["too_large"].replace("{name}", "big.mov")
        assert too_large == uploads.too_large_message("big.mov")


def test_a_tile_is_rendered_by_the_server_for_the_page_script_too(maintainer_client, machine):
    """The page's script follows a video by swapping in the server's tile: the same HTML a
    reload shows."""
    entry = LogEntry.objects.create(machine=machine, text="coil")
    media = entry.media.create(kind="video", transcode_status="processing", progress=41)
    tile = maintainer_client.get(f"/api/media/{media.pk}/tile/").content.decode()
    assert tile.strip().startswith('<figure class="tile"')
    assert "Processing… 41%" in tile and 'data-status="processing"' in tile
    page = maintainer_client.get(f"/logs/{entry.pk}/").content.decode()
    assert tile.strip() in page
    assert maintainer_client.get("/api/media/999999/tile/").status_code == 404
