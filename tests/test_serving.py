"""Videos play on every browser: iOS Safari insists on byte ranges."""

import pytest
from django.core.files.base import ContentFile
from django.utils.http import http_date

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia
from the_flip.apps.maintenance.serving import RangeNotSatisfiable, parse_range

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


# --- The Range header, parsed on its own (RFC 9110 §14) -------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-1", (0, 1)),
        ("bytes=1020-", (1020, 1023)),
        ("bytes=-3", (1021, 1023)),
        ("bytes=-5000", (0, 1023)),  # a suffix longer than the file: all of it
        ("bytes=0-99999", (0, 1023)),  # a last position past the end: up to the end
        ("Bytes = 2 - 3", (2, 3)),  # the unit is case-insensitive; spaces are tolerated
        ("bytes=0000000002-3", (2, 3)),
        (None, None),
        ("", None),
        ("bytes=5-1", None),  # invalid: RFC 9110 says ignore it and send the whole file
        ("bytes=-", None),
        ("bytes=0-1,5-6", None),  # several ranges: we send the whole file instead
        ("items=0-1", None),  # a unit we do not know
        ("bytes=a-b", None),
        ("bytes=0-" + "9" * 5000, (0, 1023)),  # more digits than Python's int() will parse
        ("bytes=-" + "9" * 5000, (0, 1023)),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1024) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1024-", 1024), ("bytes=" + "9" * 5000 + "-", 1024), ("bytes=-0", 1024),
     ("bytes=0-", 0), ("bytes=-5", 0)],
)  # fmt: skip
def test_parse_range_past_the_end_is_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


# --- What a prober sends to /media/ ---------------------------------------------------------


def test_a_null_byte_in_the_path_is_not_found_not_a_crash(maintainer_client, ready_video):
    assert maintainer_client.get("/media/videos/test.mp4%00.html").status_code == 404
    assert maintainer_client.get("/media/videos/%00").status_code == 404


def test_folders_and_other_file_types_are_not_served(maintainer_client, ready_video, settings):
    (settings.MEDIA_ROOT / "photos" / "2026.jpg").mkdir(parents=True)
    (settings.MEDIA_ROOT / "videos" / "notes.html").write_text("<script>alert(1)</script>")
    for url in (
        "/media/photos/2026.jpg",
        "/media/videos/notes.html",
        "/media/videos/",
        "/media/videos",
        "/media//etc/passwd.jpg",
        "/media/videos/..%5c..%5csecret_key",
    ):
        assert maintainer_client.get(url).status_code == 404, url


def test_a_range_of_thousands_of_digits_is_answered_not_a_crash(maintainer_client, ready_video):
    past_the_end = maintainer_client.get(
        ready_video.video_url, HTTP_RANGE="bytes=" + "9" * 5000 + "-"
    )
    assert past_the_end.status_code == 416
    to_the_end = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=0-" + "9" * 5000)
    assert to_the_end.status_code == 206 and to_the_end["Content-Range"] == "bytes 0-1023/1024"


def test_an_invalid_range_is_ignored_and_the_whole_file_sent(maintainer_client, ready_video):
    response = maintainer_client.get(ready_video.video_url, HTTP_RANGE="bytes=5-1")
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content)) == 1024
    assert "Content-Range" not in response


def test_head_answers_the_headers_without_the_body(maintainer_client, ready_video):
    response = maintainer_client.head(ready_video.video_url)
    assert response.status_code == 200
    assert response["Content-Length"] == "1024" and response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes" and response.content == b""
    ranged = maintainer_client.head(ready_video.video_url, HTTP_RANGE="bytes=0-1")
    assert ranged.status_code == 206 and ranged["Content-Range"] == "bytes 0-1/1024"
    assert ranged["Content-Length"] == "2"


def test_a_browser_that_has_the_file_gets_304(maintainer_client, ready_video):
    first = maintainer_client.get(ready_video.poster_url)
    again = maintainer_client.get(
        ready_video.poster_url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]
    )
    assert again.status_code == 304 and again.content == b""
    older = maintainer_client.get(ready_video.poster_url, HTTP_IF_MODIFIED_SINCE=http_date(0))
    assert older.status_code == 200


def test_if_range_with_an_old_date_sends_the_whole_file(maintainer_client, ready_video):
    response = maintainer_client.get(
        ready_video.video_url, HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE=http_date(0)
    )
    assert response.status_code == 200
    current = maintainer_client.get(ready_video.video_url).get("Last-Modified")
    ranged = maintainer_client.get(
        ready_video.video_url, HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE=current
    )
    assert ranged.status_code == 206
