"""A maintainer's phone uploads over the tus 1.0.0 protocol, so a dropped connection resumes
where it stopped: the protocol's rules, in-process (tests/test_resumable_live.py runs an
independent client, tuspy, against the real server)."""

import base64
import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from the_flip.apps.maintenance.models import PARTIAL_UPLOAD_PREFIX, LogEntry, PartialUpload
from the_flip.apps.worker.chores import expire_partial_uploads, remove_orphaned_files

pytestmark = pytest.mark.django_db

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = "application/offset+octet-stream"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def stored_chunks() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / PARTIAL_UPLOAD_PREFIX
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def entry(machine, maintainer) -> LogEntry:
    return LogEntry.objects.create(machine=machine, author=maintainer, text="Replaced flippers")


def create(client, entry, length: int, filename="IMG_0002.JPG", filetype="image/jpeg", **extra):
    headers = {**TUS, "Upload-Length": str(length), **extra}
    if filename is not None:
        headers["Upload-Metadata"] = metadata(filename=filename, filetype=filetype)
    return client.post(f"/api/log-entries/{entry.pk}/uploads/", headers=headers)


def patch(client, location: str, offset: int, body: bytes, **extra):
    return client.generic(
        "PATCH", location, data=body, content_type=CHUNK,
        headers={**TUS, "Upload-Offset": str(offset), **extra},
    )  # fmt: skip


def test_the_server_says_what_it_speaks(maintainer_client, entry):
    response = maintainer_client.options(f"/api/log-entries/{entry.pk}/uploads/")
    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0"
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert int(response["Tus-Max-Size"]) == settings.MAX_UPLOAD_BYTES


def test_a_photo_arrives_in_chunks_and_becomes_media_of_the_entry(maintainer_client, entry, photo):
    content = photo.read_bytes()
    created = create(maintainer_client, entry, len(content))
    assert created.status_code == 201, created.content
    assert created["Tus-Resumable"] == "1.0.0"
    location = created["Location"]
    assert location.startswith(f"/api/log-entries/{entry.pk}/uploads/")
    assert created["Upload-Expires"].endswith("GMT")

    half = len(content) // 2
    first = patch(maintainer_client, location, 0, content[:half])
    assert first.status_code == 204
    assert first["Upload-Offset"] == str(half)
    assert "Media-Location" not in first
    head = maintainer_client.head(location, headers=TUS)
    assert head.status_code == 200
    assert (head["Upload-Offset"], head["Upload-Length"]) == (str(half), str(len(content)))
    assert head["Cache-Control"] == "no-store"

    last = patch(maintainer_client, location, half, content[half:])
    assert last.status_code == 204, last.content
    assert last["Upload-Offset"] == str(len(content))
    [media] = entry.media.all()
    assert last["Media-Location"] == f"/api/media/{media.pk}/"
    assert media.kind == "photo" and media.is_ready and media.original_name == "IMG_0002.JPG"
    assert maintainer_client.head(location, headers=TUS)["Media-Location"] == last["Media-Location"]
    assert stored_chunks() == []  # the chunks are gone once the photo is stored


def test_a_video_is_stored_byte_for_byte_and_queued(maintainer_client, entry, android_clip):
    content = android_clip.read_bytes()
    location = create(
        maintainer_client, entry, len(content), filename="VID_1.mp4", filetype="video/mp4"
    )["Location"]
    for start in range(0, len(content), 10_000):
        response = patch(maintainer_client, location, start, content[start : start + 10_000])
        assert response.status_code == 204, response.content
    [media] = entry.media.all()
    assert media.kind == "video" and media.transcode_status == "pending"
    with media.file.open("rb") as stored:
        assert hashlib.sha256(stored.read()).digest() == hashlib.sha256(content).digest()


def test_a_chunk_at_the_wrong_offset_is_a_409_and_changes_nothing(maintainer_client, entry):
    location = create(maintainer_client, entry, 100)["Location"]
    assert patch(maintainer_client, location, 0, b"a" * 40).status_code == 204
    for wrong in (0, 39, 41):
        response = patch(maintainer_client, location, wrong, b"b" * 10)
        assert response.status_code == 409
        assert response["Tus-Resumable"] == "1.0.0"
        assert "40 bytes stored" in response.json()["error"]
    assert maintainer_client.head(location, headers=TUS)["Upload-Offset"] == "40"
    assert [p.read_bytes() for p in stored_chunks()] == [b"a" * 40]


def test_a_file_over_the_cap_is_a_413_at_creation_and_nothing_is_stored(maintainer_client, entry):
    response = create(maintainer_client, entry, settings.MAX_UPLOAD_BYTES + 1, "long.mov", "")
    assert response.status_code == 413
    assert "larger than 200 MB" in response.json()["error"]
    assert response["Tus-Resumable"] == "1.0.0"
    assert PartialUpload.objects.count() == 0


def test_a_chunk_past_the_end_of_the_file_is_refused(maintainer_client, entry):
    location = create(maintainer_client, entry, 10)["Location"]
    response = patch(maintainer_client, location, 0, b"x" * 11)
    assert response.status_code == 413
    assert "past the end" in response.json()["error"]
    assert maintainer_client.head(location, headers=TUS)["Upload-Offset"] == "0"
    assert stored_chunks() == []


@pytest.mark.parametrize(
    ("filename", "filetype"),
    [("notes.txt", "text/plain"), ("clip.mov", "text/html"), ("setup.exe", "")],
)
def test_a_file_type_we_do_not_take_is_a_400_at_creation(
    maintainer_client, entry, filename, filetype
):
    response = create(maintainer_client, entry, 1000, filename, filetype)
    assert response.status_code == 400
    assert filename in response.json()["error"]
    assert PartialUpload.objects.count() == 0


def test_an_upload_without_a_name_or_length_is_refused_in_plain_words(maintainer_client, entry):
    no_name = create(maintainer_client, entry, 1000, filename=None)
    assert no_name.status_code == 400 and "filename" in no_name.json()["error"]
    no_length = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/uploads/",
        headers={**TUS, "Upload-Metadata": metadata(filename="a.jpg")},
    )
    assert no_length.status_code == 400 and "Upload-Length" in no_length.json()["error"]


def test_a_request_without_tus_resumable_is_a_412(maintainer_client, entry):
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/uploads/",
        headers={"Upload-Length": "10", "Upload-Metadata": metadata(filename="a.jpg")},
    )
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"


def test_a_photo_that_is_not_one_is_refused_at_completion_and_discarded(maintainer_client, entry):
    """The name passed the check at creation; the real bytes are judged at the end."""
    fake = b"\xff\xd8\xff this is not a JPEG at all" * 10
    location = create(maintainer_client, entry, len(fake))["Location"]
    response = patch(maintainer_client, location, 0, fake)
    assert response.status_code == 400
    assert "not a photo we can read" in response.json()["error"]
    assert entry.media.count() == 0
    assert PartialUpload.objects.count() == 0 and stored_chunks() == []
    assert maintainer_client.head(location, headers=TUS).status_code == 404


def test_delete_removes_the_upload_and_its_bytes(maintainer_client, entry):
    location = create(maintainer_client, entry, 100)["Location"]
    patch(maintainer_client, location, 0, b"z" * 60)
    assert len(stored_chunks()) == 1
    response = maintainer_client.delete(location, headers=TUS)
    assert response.status_code == 204 and response["Tus-Resumable"] == "1.0.0"
    assert stored_chunks() == []
    assert maintainer_client.head(location, headers=TUS).status_code == 404


def test_an_abandoned_upload_expires_and_the_chore_removes_it(maintainer_client, entry):
    location = create(maintainer_client, entry, 100)["Location"]
    response = patch(maintainer_client, location, 0, b"q" * 30)
    expires = timezone.now() + timedelta(hours=settings.TUS_EXPIRE_HOURS)
    upload = PartialUpload.objects.get()
    assert abs((upload.expires_at - expires).total_seconds()) < 60
    assert response["Upload-Expires"]  # every PATCH answer says when it will go

    PartialUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert maintainer_client.head(location, headers=TUS).status_code == 410
    assert expire_partial_uploads() == {"expired": 1, "orphaned_objects": 0}
    assert PartialUpload.objects.count() == 0 and stored_chunks() == []


def test_bytes_no_upload_owns_are_swept_and_the_orphan_chore_leaves_live_ones(
    maintainer_client, entry
):
    location = create(maintainer_client, entry, 100)["Location"]
    patch(maintainer_client, location, 0, b"k" * 30)
    stray = Path(settings.MEDIA_ROOT) / PARTIAL_UPLOAD_PREFIX / ("0" * 32) / "000000000000-x"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a crash")
    # Both chores with no age margin: the live upload's chunk must survive both.
    assert remove_orphaned_files(min_age=0) == []
    assert expire_partial_uploads(min_age=0) == {"expired": 0, "orphaned_objects": 1}
    assert not stray.exists()
    assert [p.read_bytes() for p in stored_chunks()] == [b"k" * 30]


def test_deleting_the_log_entry_removes_its_partial_uploads(maintainer_client, entry):
    location = create(maintainer_client, entry, 100)["Location"]
    patch(maintainer_client, location, 0, b"k" * 30)
    entry.delete()
    assert PartialUpload.objects.count() == 0 and stored_chunks() == []


def test_strangers_and_csrf_less_requests_are_refused_like_the_rest_of_the_api(
    client, maintainer, entry
):
    anonymous = create(client, entry, 100)
    assert anonymous.status_code == 401 and "error" in anonymous.json()
    assert anonymous["Tus-Resumable"] == "1.0.0"

    client.handler.enforce_csrf_checks = True
    client.force_login(maintainer)
    no_token = create(client, entry, 100)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["error"]
    assert no_token["Tus-Resumable"] == "1.0.0"
    assert PartialUpload.objects.count() == 0


def test_a_strangers_large_chunk_is_refused_unread_and_still_says_tus(client, entry):
    """The body cap refuses it before anyone asks who sent it; the answer still speaks tus."""
    location = f"/api/log-entries/{entry.pk}/uploads/{uuid.UUID(int=0)}/"
    refused = patch(client, location, 0, b"x" * (2 * 1024 * 1024))
    assert refused.status_code == 413 and "larger than 1 MB" in refused.json()["error"]
    assert refused["Tus-Resumable"] == "1.0.0"


def test_another_maintainers_upload_is_not_found(maintainer_client, entry, django_user_model):
    location = create(maintainer_client, entry, 100)["Location"]
    other = django_user_model.objects.create_user(username="bo", password="pw-x", is_staff=True)
    maintainer_client.force_login(other)
    assert maintainer_client.head(location, headers=TUS).status_code == 404
    assert patch(maintainer_client, location, 0, b"x").status_code == 404


def test_check_worker_counts_partial_uploads_and_their_bytes(maintainer_client, entry, capsys):
    location = create(maintainer_client, entry, 3 * 1024 * 1024)["Location"]
    patch(maintainer_client, location, 0, b"m" * (1024 * 1024 + 512 * 1024))
    with pytest.raises(SystemExit):
        call_command("check_worker")  # unhealthy: no worker runs here; the facts still print
    assert "partial uploads:      1 holding 1.5 MB" in capsys.readouterr().out


def test_the_admin_lists_partial_uploads_with_their_total(client, entry, django_user_model):
    admin = django_user_model.objects.create_superuser(username="root", password="pw-admin-1")
    client.force_login(admin)
    create(client, entry, 4 * 1024 * 1024)
    patch(client, PartialUpload.objects.get().get_location(), 0, b"a" * (2 * 1024 * 1024))
    page = client.get("/admin/maintenance/partialupload/")
    assert page.status_code == 200
    assert "Partial uploads: 1 unfinished, holding 2.0 MB" in page.content.decode()


@pytest.mark.bucket
def test_with_a_bucket_the_chunks_are_objects_and_nothing_stays_behind(
    bucket, maintainer_client, entry, photo
):
    """BUCKET_NAME set: every chunk is an object under partial/, the photo ends in the bucket,
    and a deleted or expired upload leaves no object."""
    content = photo.read_bytes()
    location = create(maintainer_client, entry, len(content))["Location"]
    half = len(content) // 2
    assert patch(maintainer_client, location, 0, content[:half]).status_code == 204
    [chunk] = bucket.object_keys("partial/")
    assert bucket.client.get_object(Bucket=bucket.name, Key=chunk)["Body"].read() == content[:half]
    assert maintainer_client.head(location, headers=TUS)["Upload-Offset"] == str(half)
    done = patch(maintainer_client, location, half, content[half:])
    assert done.status_code == 204, done.content
    [media] = entry.media.all()
    assert bucket.object_keys("partial/") == []
    assert bucket.object_keys() == [media.file.name]

    dropped = create(maintainer_client, entry, 100)["Location"]
    patch(maintainer_client, dropped, 0, b"d" * 10)
    maintainer_client.delete(dropped, headers=TUS)
    abandoned = create(maintainer_client, entry, 100)["Location"]
    patch(maintainer_client, abandoned, 0, b"a" * 10)
    assert len(bucket.object_keys("partial/")) == 1
    PartialUpload.objects.filter(media__isnull=True).update(expires_at=timezone.now())
    assert expire_partial_uploads()["expired"] == 1
    assert bucket.object_keys("partial/") == []


def test_check_worker_says_when_expired_uploads_are_not_being_removed(maintainer_client, entry):
    """The hourly chore removes expired uploads; if they pile up for hours, it is not running."""
    from the_flip.apps.worker.health import full_report

    create(maintainer_client, entry, 100)
    PartialUpload.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    problems, _ = full_report()
    assert not any("expire_partial_uploads" in p for p in problems)
    PartialUpload.objects.update(expires_at=timezone.now() - timedelta(hours=4))
    problems, _ = full_report()
    assert any("1 resumable upload(s) expired over 3 hours ago" in p for p in problems)


def test_a_patch_that_died_holding_the_upload_does_not_lock_it_forever(
    maintainer_client, entry, settings
):
    """A web process killed mid-PATCH leaves its claim behind: refused (423) while it could
    still be running, taken over once stale; the dead writer's late bytes are not recorded."""
    location = create(maintainer_client, entry, 100)["Location"]
    upload = PartialUpload.objects.get()
    dead_writer = upload.claim_at(0)
    busy = patch(maintainer_client, location, 0, b"n" * 50)
    assert busy.status_code == 423 and "Another request" in busy.json()["error"]

    stale = timezone.now() - timedelta(seconds=settings.TUS_CLAIM_STALE_SECONDS + 1)
    PartialUpload.objects.update(claimed_at=stale)
    assert patch(maintainer_client, location, 0, b"n" * 50).status_code == 204
    assert not upload.record_chunk(dead_writer, "partial/late", 50)  # its claim is gone
    assert maintainer_client.head(location, headers=TUS)["Upload-Offset"] == "50"
    assert [p.read_bytes() for p in stored_chunks()] == [b"n" * 50]
