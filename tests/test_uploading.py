"""A maintainer logs work on a machine and attaches photos and videos from their phone."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = pytest.mark.django_db


def files_under(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.is_file()] if Path(folder).exists() else []


def upload(path: Path, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type=content_type)


def test_strangers_get_a_json_refusal_not_a_login_page(client, machine):
    for response in (
        client.get("/api/machines/"),
        client.post("/api/log-entries/", {"machine": machine.pk, "text": "x"}),
        client.get("/api/media/1/"),
    ):
        assert response.status_code in (401, 403)
        assert "error" in response.json()


def test_a_logged_in_user_who_is_not_staff_is_refused(client, django_user_model):
    visitor = django_user_model.objects.create_user(username="visitor", password="pw-123456")
    client.force_login(visitor)
    response = client.get("/api/machines/")
    assert response.status_code == 403
    assert "maintainer" in response.json()["error"]


def test_maintainer_lists_and_adds_machines(maintainer_client, machine):
    assert maintainer_client.get("/api/machines/").json() == [
        {"id": machine.pk, "name": "Eight Ball Deluxe"}
    ]
    created = maintainer_client.post(
        "/api/machines/", {"name": "Black Knight"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["name"] == "Black Knight"
    duplicate = maintainer_client.post("/api/machines/", {"name": "black knight"})
    assert duplicate.status_code == 400
    assert "already" in duplicate.json()["error"]


def test_log_entry_with_a_photo_is_ready_at_once(maintainer_client, machine, photo):
    response = maintainer_client.post(
        "/api/log-entries/",
        {
            "machine": machine.pk,
            "text": "Cleaned the playfield",
            "media": upload(photo, "image/jpeg"),
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    entry = LogEntry.objects.get(pk=body["id"])
    assert body["page_url"] == f"/logs/{entry.pk}/"
    assert entry.text == "Cleaned the playfield"
    [media] = body["media"]
    assert media["kind"] == "photo"
    assert media["status"] == "ready"
    assert media["photo_url"].startswith("/media/photos/")
    assert media["url"] == f"/api/media/{media['id']}/"
    assert media["name"] == "IMG_0002.JPG"  # which file it was, as the phone named it
    assert maintainer_client.get(media["photo_url"]).status_code == 200


def test_photo_is_turned_upright_and_stored_under_a_generated_name(
    maintainer_client, machine, tmp_path
):
    from PIL import Image

    from tests.clips import photo_jpeg

    # EXIF orientation 6: the camera held sideways; the pixels are 800x600 but show 600x800.
    sideways = photo_jpeg(tmp_path / "my secret name.jpg", size=(800, 600), exif_orientation=6)
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/", {"file": upload(sideways, "image/jpeg")}
    )
    assert response.status_code == 201
    media = LogEntryMedia.objects.get(pk=response.json()["id"])
    assert "secret" not in media.file.name
    with Image.open(media.file.path) as stored:
        assert stored.size == (600, 800)
        assert not stored.getexif().get(0x0112)


def test_video_upload_is_queued_as_pending(maintainer_client, machine, iphone_clip):
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/", {"file": upload(iphone_clip, "video/quicktime")}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "video"
    assert body["status"] == "pending"
    assert body["video_url"] is None and body["poster_url"] is None and body["error"] is None
    media = LogEntryMedia.objects.get(pk=body["id"])
    assert media.file.name.startswith("originals/") and media.file.name.endswith(".mov")
    assert "IMG_0001" not in media.file.name


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("notes.txt", "text/plain"),
        ("malware.exe", "application/octet-stream"),
        ("clip.mov", "text/html"),
        ("playlist.m3u8", "application/vnd.apple.mpegurl"),
    ],
)
def test_a_file_of_the_wrong_type_is_refused_and_nothing_is_saved(
    maintainer_client, machine, name, content_type
):
    response = maintainer_client.post(
        "/api/log-entries/",
        {
            "machine": machine.pk,
            "text": "x",
            "media": SimpleUploadedFile(name, b"abc", content_type),
        },
    )
    assert response.status_code == 400
    assert name in response.json()["error"]
    assert LogEntry.objects.count() == 0
    assert files_under(settings.MEDIA_ROOT) == []


def test_a_damaged_photo_is_refused_with_a_plain_reason(maintainer_client, machine):
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/",
        {"file": SimpleUploadedFile("IMG_1.jpg", b"\xff\xd8\xff not really", "image/jpeg")},
    )
    assert response.status_code == 400
    assert "not a photo we can read" in response.json()["error"]
    assert entry.media.count() == 0


def test_a_file_over_the_cap_gets_413_and_leaves_nothing_on_disk(
    maintainer_client, machine, settings
):
    settings.MAX_UPLOAD_BYTES = 1024 * 1024  # the 200 MB rule, scaled down to keep tests quick
    big = SimpleUploadedFile("long.mov", b"\0" * (1024 * 1024 + 1), "video/quicktime")
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(f"/api/log-entries/{entry.pk}/media/", {"file": big})
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["error"]
    assert entry.media.count() == 0
    assert files_under(settings.MEDIA_ROOT) == []
    assert files_under(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_one_bad_file_in_a_new_entry_saves_nothing(maintainer_client, machine, photo):
    response = maintainer_client.post(
        "/api/log-entries/",
        {
            "machine": machine.pk,
            "text": "two files",
            "media": [upload(photo, "image/jpeg"), SimpleUploadedFile("x.pdf", b"%PDF", "x/y")],
        },
    )
    assert response.status_code == 400
    assert LogEntry.objects.count() == 0
    assert files_under(settings.MEDIA_ROOT) == []


def test_unknown_machine_is_a_400_with_a_reason(maintainer_client):
    response = maintainer_client.post("/api/log-entries/", {"machine": "999", "text": "x"})
    assert response.status_code == 400
    assert "machine" in response.json()["error"]


def test_missing_media_is_a_json_404(maintainer_client):
    response = maintainer_client.get("/api/media/424242/")
    assert response.status_code == 404
    assert "error" in response.json()


def test_api_post_without_csrf_token_is_refused_in_json(client, maintainer, machine):
    client.handler.enforce_csrf_checks = True
    client.force_login(maintainer)
    response = client.post("/api/machines/", {"name": "Xenon"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_maintainer_deletes_a_photo_and_its_file_goes(maintainer_client, machine, photo):
    entry = LogEntry.objects.create(machine=machine)
    media_id = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/", {"file": upload(photo, "image/jpeg")}
    ).json()["id"]
    path = Path(LogEntryMedia.objects.get(pk=media_id).file.path)
    assert path.exists()
    assert maintainer_client.delete(f"/api/media/{media_id}/").status_code == 200
    assert not path.exists()
    assert maintainer_client.get(f"/api/media/{media_id}/").status_code == 404


def test_an_over_cap_form_post_says_413_not_csrf(client, maintainer, machine, settings):
    """The no-JavaScript form carries its CSRF token in the body we refuse to read."""
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    client.handler.enforce_csrf_checks = True
    client.force_login(maintainer)
    client.get(f"/machines/{machine.slug}/log/new/")
    big = SimpleUploadedFile("long.mov", b"\0" * (12 * 1024 * 1024), "video/quicktime")
    response = client.post(
        f"/machines/{machine.slug}/log/new/",
        {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, "text": "x", "media": big},
    )
    assert response.status_code == 413
    assert LogEntry.objects.count() == 0


def test_an_iphone_heic_photo_becomes_a_jpeg_capped_at_2400_px(
    maintainer_client, machine, tmp_path
):
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    heic = tmp_path / "IMG_0003.HEIC"
    Image.new("RGB", (2600, 1950), (30, 120, 200)).save(heic, quality=30)
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/", {"file": upload(heic, "image/heic")}
    )
    assert response.status_code == 201, response.content
    media = LogEntryMedia.objects.get(pk=response.json()["id"])
    assert media.file.name.endswith(".jpg")
    with Image.open(media.file.path) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (2400, 1800)
