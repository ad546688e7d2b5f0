"""Sentry, checked against a real sentry-sdk sending real envelopes to a local HTTP server
used as the DSN (no mocks): one event per failed transcode (not two with the huey
integration), one per given-up video, and Crons check-ins from the worker's heartbeat."""

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import wait_for
from the_flip.apps.maintenance.models import LogEntryMedia

from .worker_helpers import make_video


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli

        return brotli.decompress(body)
    return body


def parse_envelope(raw: bytes) -> list[tuple[dict, dict]]:
    """[(item header, payload), ...] of one envelope (header line, then header/payload pairs;
    a payload is ``length`` bytes when the header says so, else one line)."""
    items = []
    position = raw.index(b"\n") + 1  # skip the envelope header
    while position < len(raw):
        end = raw.find(b"\n", position)
        end = len(raw) if end < 0 else end
        line = raw[position:end].strip()
        position = end + 1
        if not line:
            continue
        header = json.loads(line)
        if "length" in header:
            payload = raw[position : position + header["length"]]
            position += header["length"] + 1
        else:
            end = raw.find(b"\n", position)
            end = len(raw) if end < 0 else end
            payload, position = raw[position:end], end + 1
        items.append((header, json.loads(payload) if payload.strip() else {}))
    return items


class SentryServer:
    """Collects what a real SDK sends to http://key@127.0.0.1:<port>/1."""

    def __init__(self):
        self.items: list[tuple[dict, dict]] = []
        collected = self.items

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                raw = _decode(body, self.headers.get("Content-Encoding", ""))
                collected.extend(parse_envelope(raw))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_port}/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind: str) -> list[dict]:
        return [payload for header, payload in self.items if header.get("type") == kind]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def sentry_server():
    server = SentryServer()
    yield server
    server.close()


@pytest.fixture
def sentry_in_process(sentry_server, settings):
    from the_flip.sentry import init_sentry

    init_sentry(sentry_server.dsn)
    settings.SENTRY_DSN = sentry_server.dsn
    yield sentry_server
    sentry_sdk.flush(timeout=2)
    sentry_sdk.init()  # Sentry off again for the other tests


@pytest.mark.slow
def test_a_failed_transcode_sends_exactly_one_event_and_the_worker_checks_in(
    sentry_server, consumer_factory, maintainer_client, machine
):
    consumer = consumer_factory(SENTRY_DSN=sentry_server.dsn, SENTRY_ENVIRONMENT="test",
                                SENTRY_RELEASE="the_flip@test")  # fmt: skip
    entry = maintainer_client.post(
        "/api/log-entries/", {"machine": machine.pk, "text": "bad video"}
    ).json()
    bogus = maintainer_client.post(
        f"/api/log-entries/{entry['id']}/media/",
        {"file": SimpleUploadedFile("IMG_9.MOV", b"this is not a video\n" * 50, "video/quicktime")},
    ).json()

    def failed():
        return LogEntryMedia.objects.get(pk=bogus["id"]).transcode_status == "failed"

    wait_for(failed, timeout=60, what="the bogus video to fail")
    wait_for(lambda: sentry_server.of_type("event"), timeout=10, what="a Sentry event")
    wait_for(lambda: sentry_server.of_type("check_in"), timeout=10, what="a Crons check-in")
    consumer.send_signal(15)
    consumer.wait(timeout=20)  # the SDK flushes on exit: anything else would show up now
    events = sentry_server.of_type("event")
    assert len(events) == 1, [e.get("message") or e.get("exception") for e in events]
    event = events[0]
    assert str(event["tags"]["media_id"]) == str(bogus["id"])
    assert event["environment"] == "test" and event["release"] == "the_flip@test"
    transcode = event["contexts"]["transcode"]
    assert transcode["media_id"] == bogus["id"]
    assert "probe" in transcode and transcode["ffmpeg_stderr_tail"]
    check_in = sentry_server.of_type("check_in")[0]
    assert check_in["monitor_slug"] == "the-flip-worker" and check_in["status"] == "ok"


@pytest.mark.django_db
def test_a_given_up_video_sends_one_event(sentry_in_process, machine, settings):
    from the_flip.apps.worker import chores

    media = make_video(machine, status="processing", attempts=3, age=900, heartbeat_age=600)
    chores.reset_stale_transcodes()
    chores.reset_stale_transcodes()  # already failed: nothing more to say
    sentry_sdk.flush(timeout=5)
    wait_for(lambda: sentry_in_process.of_type("event"), timeout=5, what="a Sentry event")
    events = sentry_in_process.of_type("event")
    assert len(events) == 1
    assert str(events[0]["tags"]["media_id"]) == str(media.pk)
    assert events[0]["level"] == "error"
    assert "gave up after 3 attempts" in (
        events[0].get("message") or events[0]["logentry"]["message"]
    )


@pytest.mark.django_db
def test_a_long_transcode_keeps_the_worker_checking_in(
    sentry_in_process, machine, settings, monkeypatch
):
    """One worker thread: while a 20-minute video transcodes, the every-minute heartbeat task
    waits. The transcode's own progress keeps the worker's heartbeat and Crons check-in going,
    at most once every WORKER_PROGRESS_BEAT_SECONDS."""
    from the_flip.apps.worker import health, transcoding
    from the_flip.apps.worker.models import WorkerHeartbeat

    monkeypatch.setattr(health, "_last_beat", 0.0)
    media = make_video(machine, status="processing", attempts=1)
    job = transcoding._JobCancel(None)
    for percent in (10, 11, 12):  # three progress reports, a second apart in real life
        transcoding._progress(media, percent, job)
    assert not job.is_set(), "the video is still processing: ffmpeg goes on"
    media.refresh_from_db()
    assert media.progress == 12
    assert WorkerHeartbeat.objects.filter(worker=health.worker_identity()).exists()
    sentry_sdk.flush(timeout=5)
    wait_for(lambda: sentry_in_process.of_type("check_in"), timeout=5, what="a check-in")
    assert len(sentry_in_process.of_type("check_in")) == 1, "throttled to one a minute"
