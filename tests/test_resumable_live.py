"""A phone on museum Wi-Fi uploads a 30 MB video with an independent tus client (tuspy) to
the app as deployed (supervisord: gunicorn + worker), the connection drops mid-chunk, and the
upload resumes where the server says it stopped, not from zero."""

import base64
import hashlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tusclient.client import TusClient

from tests import clips
from tests.conftest import wait_for
from tests.live_stack import Client, Stack, clean_stack

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

MB = 1024 * 1024
CHUNK = 5 * MB
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, ffmpeg_available):
    from tests.conftest import require

    require(ffmpeg_available, "ffmpeg")
    # One PATCH reads for at most 4 s here (60 s by default), so a stalled phone is quick to see.
    with clean_stack(tmp_path_factory.mktemp("data"), TUS_PATCH_READ_SECONDS="4") as running:
        yield running


@pytest.fixture(scope="module")
def phone(stack) -> Client:
    return Client(stack.port)


@pytest.fixture(scope="module")
def entry_id(phone) -> int:
    return phone.new_entry(phone.new_machine("Twilight Zone")["id"])["id"]


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory) -> Path:
    """A real 30+ MB video that still transcodes in seconds: 3.5 s of lossless noise."""
    path = tmp_path_factory.mktemp("big") / "VID_20261201_NOISE.mp4"
    clips.ffmpeg(
        "-f", "lavfi", "-i", "nullsrc=s=640x360:r=25,geq=lum='random(1)*255':cb=128:cr=128",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3.5",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    assert path.stat().st_size >= 30 * MB
    return path


def metadata(filename: str) -> str:
    return "filename " + base64.b64encode(filename.encode()).decode()


def tus_client(stack: Stack, phone: Client, entry_id: int) -> TusClient:
    # tuspy sends our session cookie and CSRF header like a logged-in page would.
    return TusClient(
        f"{stack.base_url}/api/log-entries/{entry_id}/uploads/", headers=phone.headers()
    )


def head(phone: Client, location: str) -> http.client.HTTPResponse:
    conn = phone.connection()
    conn.request("HEAD", location, headers=phone.headers(**TUS))
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def patch_cut_short(
    stack: Stack,
    phone: Client,
    location: str,
    offset: int,
    body: bytes,
    declared: int,
    through_nginx: bool = False,
):
    """Send a PATCH's headers and only part of its body, then drop the connection, as a phone
    leaving the Wi-Fi does. By default straight to gunicorn's socket (the Django side's promise
    to keep what arrived); ``through_nginx`` as a phone really reaches us: nginx buffers each
    request whole, so a cut chunk never reaches Django at all."""
    head_lines = [
        f"PATCH {location} HTTP/1.1",
        f"Host: 127.0.0.1:{stack.port}",
        "Content-Type: application/offset+octet-stream",
        f"Content-Length: {declared}",
        f"Upload-Offset: {offset}",
        *(f"{k}: {v}" for k, v in phone.headers(**TUS).items()),
    ]
    if through_nginx:
        sock = socket.create_connection(("127.0.0.1", stack.port))
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(stack.web_socket))
    with sock:
        sock.sendall(("\r\n".join(head_lines) + "\r\n\r\n").encode())
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)


def wait_for_offset(phone: Client, location: str, expected: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while True:
        offset = int(head(phone, location).headers["Upload-Offset"])
        if offset == expected or time.monotonic() > deadline:
            return offset
        time.sleep(0.1)


def stored_chunks(stack: Stack, location: str) -> list[Path]:
    upload_id = location.rstrip("/").rsplit("/", 1)[1].replace("-", "")
    return sorted((stack.data_dir / "media" / "partial" / upload_id).glob("*"))


def wait_until_ready(phone: Client, media_path: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, media = phone.request("GET", media_path)
        assert status == 200, media
        if media["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return media
        time.sleep(0.5)


def assert_plays(phone: Client, video_url: str, tmp_path: Path) -> None:
    """The page's video URL serves a whole H.264 file ffmpeg decodes without an error (this
    stack keeps media on its disk: 200, no redirect)."""
    conn = phone.connection()
    try:
        conn.request("GET", video_url, headers=phone.headers())
        response = conn.getresponse()
        video = tmp_path / "served.mp4"
        video.write_bytes(response.read())
    finally:
        conn.close()
    assert response.status == 200
    [stream] = [s for s in clips.ffprobe(video)["streams"] if s["codec_type"] == "video"]
    assert stream["codec_name"] == "h264"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(video), "-f", "null", "-"],
        check=True, timeout=120,
    )  # fmt: skip


def upload_row(stack: Stack, location: str) -> tuple[int, list, str]:
    """(offset, chunks, claim) of the upload's row, read from the app's database."""
    upload_id = location.rstrip("/").rsplit("/", 1)[1].replace("-", "")
    with sqlite3.connect(stack.data_dir / "db.sqlite3") as db:
        [(offset, chunks, claim)] = db.execute(
            "SELECT offset, chunks, claim FROM maintenance_partialupload WHERE id = ?",
            (upload_id,),
        ).fetchall()
    return offset, json.loads(chunks), claim


def test_tuspy_uploads_a_30_mb_video_in_5_mb_chunks_and_it_plays(
    stack, phone, entry_id, big_clip, tmp_path
):
    uploader = tus_client(stack, phone, entry_id).uploader(
        str(big_clip), chunk_size=CHUNK,
        metadata={"filename": big_clip.name, "filetype": "video/mp4"},
    )  # fmt: skip
    uploader.upload()
    location = path_of(uploader.url)
    done = head(phone, location)
    size = big_clip.stat().st_size
    assert done.headers["Upload-Offset"] == str(size)
    media_path = done.headers["Media-Location"]
    _, chunks, _ = upload_row(stack, location)
    assert [start for start, _, _ in chunks] == list(range(0, size, CHUNK))  # 5 MB per PATCH

    media = wait_until_ready(phone, media_path)
    assert media["status"] == "ready", (media, stack.log_tail())
    assert media["name"] == big_clip.name
    assert_plays(phone, media["video_url"], tmp_path)
    assert stored_chunks(stack, location) == []  # nothing of the upload is left behind


def test_a_connection_cut_mid_chunk_resumes_from_what_was_really_stored(
    stack, phone, entry_id, big_clip, tmp_path
):
    source = big_clip.read_bytes()
    size = len(source)
    uploader = tus_client(stack, phone, entry_id).uploader(
        str(big_clip), chunk_size=CHUNK,
        metadata={"filename": "IMG_CUT.mp4", "filetype": "video/mp4"},
    )  # fmt: skip
    uploader.upload(stop_at=2 * CHUNK)
    location = path_of(uploader.url)
    assert int(head(phone, location).headers["Upload-Offset"]) == 2 * CHUNK

    # The third chunk: its headers and 3.3 MB of its 5 MB, then the phone is gone.
    arrived = 3 * MB + 300_000
    patch_cut_short(
        stack, phone, location, 2 * CHUNK, source[2 * CHUNK : 2 * CHUNK + arrived], CHUNK
    )
    # HEAD says exactly what the server stored: every byte that arrived, not one more.
    offset = wait_for_offset(phone, location, 2 * CHUNK + arrived)
    assert offset == 2 * CHUNK + arrived
    on_disk = b"".join(p.read_bytes() for p in stored_chunks(stack, location))
    assert on_disk == source[:offset]

    # tuspy picks the upload up by its URL, asks the offset, and goes on from there.
    resumed = tus_client(stack, phone, entry_id).uploader(
        str(big_clip), url=uploader.url, chunk_size=CHUNK
    )
    assert resumed.offset == offset
    resumed.upload(stop_at=size - 1000)
    # Before the last bytes arrive, the stored original is the source's bytes exactly (the
    # worker deletes the original once transcoded, so it is compared now).
    stored = b"".join(p.read_bytes() for p in stored_chunks(stack, location))
    assert hashlib.sha256(stored + source[-1000:]).hexdigest() == hashlib.sha256(source).hexdigest()
    chunk_starts = sorted(int(p.name.split("-")[0]) for p in stored_chunks(stack, location))
    # The chunk after the drop started where the cut one ended: not from zero, not again from
    # the start of the chunk that was cut.
    assert chunk_starts[:4] == [0, CHUNK, 2 * CHUNK, offset]
    resumed.upload()

    done = head(phone, location)
    media = wait_until_ready(phone, done.headers["Media-Location"])
    assert media["status"] == "ready", (media, stack.log_tail())
    with sqlite3.connect(stack.data_dir / "db.sqlite3") as db:
        [(original_size,)] = db.execute(
            "SELECT original_size FROM maintenance_logentrymedia WHERE id = ?", (media["id"],)
        ).fetchall()
    assert original_size == size
    assert_plays(phone, media["video_url"], tmp_path)


def test_two_patches_at_once_on_one_upload_cannot_corrupt_it(stack, phone, entry_id):
    """A phone retrying while its first request is still in flight: one writes, one is told
    to wait, and the stored bytes are the first one's, once."""
    content = bytes(range(256)) * 4096  # 1 MB
    create = phone.connection()
    create.request(
        "POST", f"/api/log-entries/{entry_id}/uploads/",
        headers=phone.headers(**TUS, **{"Upload-Length": str(2 * len(content)),
                                        "Upload-Metadata": metadata("IMG_1.MOV")}),
    )  # fmt: skip
    created = create.getresponse()
    created.read()
    assert created.status == 201
    location = created.headers["Location"]

    # The first PATCH sends half its body and stalls (holding the upload) ... straight to
    # gunicorn: nginx would hold a stalled body itself and pass on only whole requests.
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(str(stack.web_socket))
    lines = [
        f"PATCH {location} HTTP/1.1", f"Host: 127.0.0.1:{stack.port}",
        "Content-Type: application/offset+octet-stream", f"Content-Length: {len(content)}",
        "Upload-Offset: 0", *(f"{k}: {v}" for k, v in phone.headers(**TUS).items()),
    ]  # fmt: skip
    slow.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + content[: len(content) // 2])
    wait_for(lambda: upload_row(stack, location)[2] != "", timeout=10, what="the first claim")
    # ... while a second one for the same offset arrives whole, twice at once.
    answers = []

    def second() -> None:
        answers.append(
            phone.request(
                "PATCH",
                location,
                body=b"X" * len(content),
                headers={
                    **TUS,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
            )
        )

    threads = [threading.Thread(target=second) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [423, 423], answers
    assert all("Another request" in body["error"] for _, body in answers)

    slow.sendall(content[len(content) // 2 :])
    reply = slow.recv(4096).decode(errors="replace")
    slow.close()
    assert reply.startswith("HTTP/1.1 204"), reply
    assert f"Upload-Offset: {len(content)}" in reply
    assert int(head(phone, location).headers["Upload-Offset"]) == len(content)
    assert b"".join(p.read_bytes() for p in stored_chunks(stack, location)) == content
    # The loser, retrying at its old offset, is told where the upload really stands.
    status, body = phone.request(
        "PATCH", location, body=b"X" * 10,
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert status == 409 and f"{len(content)} bytes stored" in body["error"]
    phone.request("DELETE", location, headers=TUS)
    assert stored_chunks(stack, location) == []


def test_through_nginx_a_chunk_cut_mid_way_leaves_a_resumable_upload(
    stack, phone, entry_id, big_clip, tmp_path
):
    """nginx holds each PATCH body until it is whole: a phone that drops mid-chunk costs that
    chunk (nothing of it reaches Django), HEAD says so, and the upload goes on from there."""
    source = big_clip.read_bytes()
    uploader = tus_client(stack, phone, entry_id).uploader(
        str(big_clip), chunk_size=CHUNK,
        metadata={"filename": "IMG_NGINX.mp4", "filetype": "video/mp4"},
    )  # fmt: skip
    uploader.upload(stop_at=CHUNK)
    location = path_of(uploader.url)
    patch_cut_short(
        stack, phone, location, CHUNK, source[CHUNK : CHUNK + 3 * MB], CHUNK, through_nginx=True
    )
    time.sleep(1)  # nginx has seen the client go
    assert wait_for_offset(phone, location, CHUNK, timeout=3) == CHUNK
    assert upload_row(stack, location)[0] == CHUNK
    assert b"".join(p.read_bytes() for p in stored_chunks(stack, location)) == source[:CHUNK]

    resumed = tus_client(stack, phone, entry_id).uploader(
        str(big_clip), url=uploader.url, chunk_size=CHUNK
    )
    assert resumed.offset == CHUNK
    resumed.upload()
    media = wait_until_ready(phone, head(phone, location).headers["Media-Location"])
    assert media["status"] == "ready", (media, stack.log_tail())
    assert_plays(phone, media["video_url"], tmp_path)


def test_a_phone_that_stalls_mid_chunk_holds_a_web_thread_only_briefly(stack, phone, entry_id):
    """Straight to gunicorn (no nginx to buffer): a phone sends half a chunk and then nothing,
    without hanging up. The PATCH gives up reading after TUS_PATCH_READ_SECONDS (4 s here),
    keeps what arrived and answers, so the thread is free again and the upload resumable."""
    content = os.urandom(2 * MB)
    create = phone.connection()
    create.request(
        "POST", f"/api/log-entries/{entry_id}/uploads/",
        headers=phone.headers(**TUS, **{"Upload-Length": str(len(content)),
                                        "Upload-Metadata": metadata("IMG_STALL.MOV")}),
    )  # fmt: skip
    created = create.getresponse()
    created.read()
    location = created.headers["Location"]
    stalled = socket.socket(socket.AF_UNIX)
    stalled.connect(str(stack.web_socket))
    lines = [
        f"PATCH {location} HTTP/1.1", f"Host: 127.0.0.1:{stack.port}",
        "Content-Type: application/offset+octet-stream", f"Content-Length: {len(content)}",
        "Upload-Offset: 0", *(f"{k}: {v}" for k, v in phone.headers(**TUS).items()),
    ]  # fmt: skip
    started = time.monotonic()
    stalled.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + content[:MB])
    stalled.settimeout(30)
    reply = stalled.recv(4096).decode(errors="replace")
    waited = time.monotonic() - started
    stalled.close()
    assert reply.startswith("HTTP/1.1 204"), reply
    assert f"Upload-Offset: {MB}\r\n" in reply
    assert 3.5 < waited < 15, waited
    assert b"".join(p.read_bytes() for p in stored_chunks(stack, location)) == content[:MB]
    status, _ = phone.request(
        "PATCH", location, body=content[MB:],
        headers={**TUS, "Upload-Offset": str(MB),
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert status == 204  # the rest arrives (a video is judged by its name and type)
    phone.request("DELETE", location, headers=TUS)
