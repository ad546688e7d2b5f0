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
