"""Under load, as deployed: supervisord runs gunicorn (deploy/gunicorn.conf.py) and the huey
consumer exactly as `make run` does, on a throwaway DATA_DIR, and phones hit it over HTTP."""

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests import clips
from tests.live_stack import Client, clean_stack, streamed_upload

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

UPLOADS = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory, ffmpeg_available):
    from tests.conftest import require

    require(ffmpeg_available, "ffmpeg")
    with clean_stack(tmp_path_factory.mktemp("data")) as running:
        yield running


@pytest.fixture(scope="module")
def phone(stack) -> Client:
    return Client(stack.port)


@pytest.fixture(scope="module")
def entry(phone) -> dict:
    machine = phone.new_machine("Black Knight")
    return {"machine": machine["id"], **phone.new_entry(machine["id"], "Load")}


@pytest.fixture(scope="module")
def load_files(tmp_path_factory) -> list[tuple[str, bytes, str, str]]:
    """20 files as (name, content, MIME type, what should happen): photos, short videos from
    both kinds of phone, and a few bad ones."""
    folder = tmp_path_factory.mktemp("load-media")
    iphone = clips.iphone_hevc_mov(folder / "iphone.mov", size="320x180", seconds=1).read_bytes()
    android = clips.android_h264_mp4(folder / "android.mp4", seconds=1).read_bytes()
    photo = clips.photo_jpeg(folder / "p.jpg", size=(640, 480)).read_bytes()
    files = []
    for i in range(UPLOADS):
        slot = i % 10
        if slot in (0, 3, 6):
            files.append((f"IMG_{i:04}.JPG", photo, "image/jpeg", "photo"))
        elif slot in (1, 4, 7):
            files.append((f"IMG_{i:04}.MOV", iphone, "video/quicktime", "video"))
        elif slot in (2, 5, 8):
            files.append((f"VID_{i:04}.mp4", android, "video/mp4", "video"))
        elif i == 9:  # a text file dressed as a video: accepted, then fails with a reason
            files.append((f"IMG_{i:04}.MOV", b"not a video\n" * 100, "video/quicktime", "bad"))
        else:  # a "photo" that is not an image: refused at once
            files.append((f"IMG_{i:04}.JPG", b"not a photo\n" * 100, "image/jpeg", "refused"))
    return files


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_twenty_concurrent_uploads_all_answered_none_lost_and_the_site_stays_healthy(
    stack, phone, entry, load_files
):
    health: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch_health():
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = stack.healthz()[0]
            except OSError as failure:
                status = repr(failure)
            health.append((time.monotonic() - started, status))
            stop.wait(0.25)

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()

    answers: dict[int, tuple[int, object]] = {}
    barrier = threading.Barrier(UPLOADS)

    def send(i: int, name: str, content: bytes, content_type: str):
        barrier.wait()
        try:
            if i % 2:  # half add to an existing entry, half create an entry with the file
                answers[i] = phone.post_files(
                    f"/api/log-entries/{entry['id']}/media/", {},
                    [("file", name, content, content_type)],
                )  # fmt: skip
            else:
                answers[i] = phone.post_files(
                    "/api/log-entries/", {"machine": entry["machine"], "text": f"load {i}"},
                    [("media", name, content, content_type)],
                )  # fmt: skip
        except Exception as failure:  # an unanswered upload is what this test is about
            answers[i] = (0, repr(failure))

    started = time.monotonic()
    threads = [
        threading.Thread(target=send, args=(i, name, content, mime))
        for i, (name, content, mime, _) in enumerate(load_files)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    upload_seconds = time.monotonic() - started

    # Every upload answered: 201 for the good ones and the disguised text, 400 for the rest.
    media_ids: dict[int, str] = {}
    for i, (name, _, _, expected) in enumerate(load_files):
        status, body = answers[i]
        if expected == "refused":
            assert status == 400, (name, status, body)
            assert "error" in body
            continue
        assert status == 201, (name, status, body)
        media = body if i % 2 else body["media"][0]
        assert media["kind"] == ("photo" if expected == "photo" else "video")
        media_ids[media["id"]] = expected
    assert len(media_ids) == sum(1 for f in load_files if f[3] != "refused")

    # Every video ends ready, or failed with a reason a maintainer can read.
    def settled() -> dict[int, dict]:
        states = {}
        for media_id in media_ids:
            status, body = phone.request("GET", f"/api/media/{media_id}/")
            assert status == 200, body
            states[media_id] = body
        return states

    deadline = time.monotonic() + 90
    while True:
        states = settled()
        if all(s["status"] in ("ready", "failed") for s in states.values()):
            break
        assert time.monotonic() < deadline, (states, stack.log_tail())
        time.sleep(0.5)
    stop.set()
    watcher.join()

    for media_id, expected in media_ids.items():
        body = states[media_id]
        if expected == "bad":
            assert body["status"] == "failed" and body["error"], body
        else:
            assert body["status"] == "ready", (body, stack.log_tail())
            assert body["video_url" if expected == "video" else "photo_url"]

    # Nothing lost, nothing duplicated: the database holds exactly what was answered 201.
    with sqlite3.connect(stack.data_dir / "db.sqlite3") as db:
        rows = db.execute("SELECT id, original_name FROM maintenance_logentrymedia").fetchall()
    assert sorted(r[0] for r in rows) == sorted(media_ids)
    names = [r[1] for r in rows]
    assert len(names) == len(set(names))
    # On disk: one video + poster per ready video, one JPEG per photo, no originals left but
    # the failed one's (kept for Try again), no half-written uploads.
    media_files = files_under(stack.data_dir / "media")
    ready_videos = sum(1 for e in media_ids.values() if e == "video")
    photos = sum(1 for e in media_ids.values() if e == "photo")
    assert sum(f.startswith("videos/") for f in media_files) == ready_videos
    assert sum(f.startswith("posters/") for f in media_files) == ready_videos
    assert sum(f.startswith("photos/") for f in media_files) == photos
    assert sum(f.startswith("originals/") for f in media_files) == 1
    assert files_under(stack.data_dir / "tmp" / "uploads") == set()

    # /healthz answered 200, promptly, the whole time.
    assert health, "the health watcher never ran"
    bad = [h for h in health if h[1] != 200]
    assert not bad, bad
    slowest = max(seconds for seconds, _ in health)
    assert slowest < 2.0, f"/healthz took {slowest:.2f}s under load"
    print(f"\n20 uploads answered in {upload_seconds:.1f}s; {len(health)} health checks, "
          f"slowest {slowest * 1000:.0f} ms")  # fmt: skip


def test_a_2_gb_upload_is_refused_with_413_before_its_body_is_sent_and_costs_no_disk(
    stack, phone, entry
):
    before = files_under(stack.data_dir / "media") | files_under(stack.data_dir / "tmp")
    two_gb = 2 * 1024**3
    for path in (f"/api/log-entries/{entry['id']}/media/", "/api/log-entries/"):
        started = time.monotonic()
        # Declare 2 GB, send only 1 MB of it, then read the answer.
        status, body, sent = streamed_upload(
            phone, path, "IMG_HUGE.MOV", two_gb, send_at_most=1024 * 1024
        )
        assert status == 413, body
        assert "larger than 200 MB" in body["error"]
        assert sent <= 1024 * 1024
        assert time.monotonic() - started < 5
    after = files_under(stack.data_dir / "media") | files_under(stack.data_dir / "tmp")
    assert after == before
    assert stack.healthz()[0] == 200
