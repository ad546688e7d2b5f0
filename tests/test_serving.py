"""Videos play on every browser: iOS Safari insists on byte ranges."""

import pytest
from django.core.files.base import ContentFile

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready_video(machine):
    entry = LogEntry.objects.create(machine=machine)
    media = LogEntryMedia.objects.create(log_entry=entry, kind="video", transcode_status="ready")
    media.transcoded_file.save("videos/test.mp4", ContentFile(bytes(range(256)) * 4), save=False)
    media.poster_file.save("posters/test.jpg", ContentFile(b"\xff\xd8jpeg"), save=False)
    media.save()
    return media


def test_a_range_request_gets_206_with_just_those_bytes(maintainer_client, ready_video):
    response = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=0-1")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == b"\x00\x01"
    assert response["Content-Range"] == "bytes 0-1/1024"
    assert response["Content-Length"] == "2"
    assert response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_open_ended_and_suffix_ranges(maintainer_client, ready_video):
    tail = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=1020-")
    assert tail.status_code == 206
    assert b"".join(tail.streaming_content) == bytes([252, 253, 254, 255])
    last = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=-3")
    assert last["Content-Range"] == "bytes 1021-1023/1024"


def test_a_range_past_the_end_is_416(maintainer_client, ready_video):
    response = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=5000-")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"


def test_whole_file_without_range(maintainer_client, ready_video):
    response = maintainer_client.get(ready_video.poster_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Accept-Ranges"] == "bytes"


def test_media_needs_a_login(client, ready_video):
    response = client.get(ready_video.video_url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_originals_and_paths_outside_media_are_never_served(maintainer_client, ready_video):
    assert maintainer_client.get("/media/originals/anything.mov").status_code == 404
    assert maintainer_client.get("/media/../db.sqlite3").status_code == 404
    assert maintainer_client.get("/media/videos/%2e%2e/%2e%2e/secret_key").status_code == 404
