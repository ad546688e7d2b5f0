"""The museum outgrows one machine: the web and two workers run as separate processes, each
with a DATA_DIR of its own (no shared disk), on one PostgreSQL database and one bucket.

Production settings, started by deploy/start (ROLE=web: nginx + gunicorn; ROLE=worker: the
worker alone) as `make run` and the container start them, moto's S3 server over HTTP, a fresh
PostgreSQL database of this module's own.
"""

import os
import secrets
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.buckets import Bucket
from tests.conftest import descendants, require, wait_for
from tests.live_stack import Client, Stack

pytestmark = [pytest.mark.bucket, pytest.mark.postgres, pytest.mark.slow]


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url and os.environ.get("DATABASE_URL", "").startswith("postgres"):
        url = os.environ["DATABASE_URL"]
    return url


@pytest.fixture(scope="module")
def database_url():
    """A database of our own on the PostgreSQL server the suite uses, dropped afterwards."""
    import psycopg

    server = _server_url()
    require(bool(server), "PostgreSQL (TEST_DATABASE_URL)")
    name = f"the_flip_roles_{secrets.token_hex(4)}"
    parts = urlsplit(server)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Deployment:
    """A two-role deployment as a platform runs it (deploy/start, as `make run` and the
    container do): ROLE=web and two ROLE=worker processes, each with its own DATA_DIR, one
    PostgreSQL database, one bucket."""

    def __init__(self, root: Path, database_url: str, bucket: Bucket):
        self.database_url = database_url
        self.bucket = bucket
        env = {
            "DATABASE_URL": database_url,
            **bucket.env,
            # A killed worker's video is noticed by the other at its next minute's reset.
            "TRANSCODE_STALE_SECONDS": "5",
            "WORKER_STARTUP_STALE_SECONDS": "1",
            "WORKER_BEAT_SECONDS": "2",
        }
        self.web = Stack(root / "web", role="web", **env)
        self.workers = [
            Stack(root / name, role="worker", **env) for name in ("worker-a", "worker-b")
        ]
        self.port = self.web.port

    @property
    def stacks(self) -> list[Stack]:
        return [self.web, *self.workers]

    def start(self) -> "Deployment":
        for stack in self.stacks:
            stack.start()
        return self

    def stop(self) -> None:
        for stack in self.stacks:
            stack.stop()

    def logs(self) -> str:
        return "\n".join(f"== {s.data_dir.name}\n{s.log_tail(2500)}" for s in self.stacks)

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def deployment(database_url, s3_server, tmp_path_factory):
    bucket = Bucket(s3_server)
    site = Deployment(tmp_path_factory.mktemp("roles"), database_url, bucket)
    # What `make run` and the web's entrypoint run first: the bucket answers.
    site.web.manage("check")
    site.start()

    def healthy():
        try:
            status, body = site.web.healthz()
        except (OSError, ValueError):
            return False
        return status == 200 and body.get("workers_alive") == 2 and body

    try:
        body = wait_for(healthy, timeout=60, what="the web and both workers to be healthy")
        assert body["storage"] == "ok"
    except AssertionError as slow:
        site.stop()
        raise AssertionError(site.logs()) from slow
    yield site
    site.stop()
    bucket.empty()


def media_of(client: Client, media_id: int) -> dict:
    status, body = client.request("GET", f"/api/media/{media_id}/")
    assert status == 200, body
    return body


def redirect_of(client: Client, path: str) -> str:
    conn = client.connection()
    try:
        conn.request("GET", path, headers=client.headers())
        response = conn.getresponse()
        response.read()
        assert response.status == 302, response.status
        return response.headers["Location"]
    finally:
        conn.close()


def plays(client: Client, body: dict) -> None:
    """The page's video URL redirects to the bucket, which answers ranges as iOS wants."""
    signed = redirect_of(client, body["video_url"])
    request = urllib.request.Request(signed, headers={"Range": "bytes=0-1023"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206 and answer.headers["Content-Type"] == "video/mp4"
        assert len(answer.read()) == 1024


@pytest.fixture(scope="module")
def machine_id(deployment) -> int:
    return Client(deployment.port).new_machine("Medieval Madness")["id"]


def upload(client: Client, machine_id: int, clip: Path, content_type: str) -> int:
    files = [("media", clip.name, clip.read_bytes(), content_type)]
    return client.new_entry(machine_id, "rubber rings replaced", files)["media"][0]["id"]


def no_media_on_disk(site: Deployment) -> None:
    for stack in site.stacks:
        media = stack.data_dir / "media"
        assert not media.exists() or not any(media.rglob("*")), f"{stack.data_dir} has media"


def test_ten_videos_at_once_are_each_transcoded_exactly_once_by_two_workers(
    deployment, machine_id, android_clip
):
    client = Client(deployment.port)
    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(lambda _: upload(client, machine_id, android_clip, "video/mp4"),
                            range(10)))  # fmt: skip

    def all_done():
        states = [media_of(client, media_id)["status"] for media_id in ids]
        return all(state in ("ready", "failed") for state in states) and states

    states = wait_for(all_done, timeout=240, interval=1, what="ten videos to be transcoded")
    assert states == ["ready"] * 10, deployment.logs()
    runs = deployment.sql(
        "select media_id, count(*), array_agg(distinct worker_pid) from worker_taskrecord "
        "where state = 'succeeded' and task_name like %s group by media_id",
        "%transcode_media",
    )
    assert sorted(media_id for media_id, _, _ in runs) == sorted(ids)
    assert all(count == 1 for _, count, _ in runs), runs
    attempts = deployment.sql(
        "select attempts from maintenance_logentrymedia where id = any(%s)", ids
    )
    assert [a for (a,) in attempts] == [1] * 10, "one ffmpeg run per video"
    pids = {pid for _, _, pids in runs for pid in pids}
    assert pids == {w.process.pid for w in deployment.workers}, "both workers took a share"

    # The web and the workers share no disk: everything is in the bucket.
    no_media_on_disk(deployment)
    keys = deployment.bucket.object_keys()
    assert not [key for key in keys if key.startswith("originals/")]
    assert len([key for key in keys if key.startswith("videos/")]) >= 10
    for media_id in ids[:3]:
        plays(client, media_of(client, media_id))


def test_a_worker_killed_mid_transcode_loses_nothing_the_other_finishes_it(
    deployment, machine_id, media_dir
):
    from tests import clips

    clip = clips.iphone_hevc_mov(media_dir / "IMG_KILL.MOV", size="640x360", seconds=12)
    client = Client(deployment.port)
    media_id = upload(client, machine_id, clip, "video/quicktime")

    def running():
        rows = deployment.sql(
            "select worker, progress from maintenance_logentrymedia where id = %s", media_id
        )
        worker, progress = rows[0]
        return worker and (progress or 0) > 0 and worker

    holder = wait_for(running, timeout=90, interval=0.1, what="ffmpeg to be running")
    pid = int(holder.split(":")[1])
    victim = next(w.process for w in deployment.workers if w.process.pid == pid)
    survivor = next(w.process for w in deployment.workers if w.process.pid != pid)
    # Like the OOM killer: the worker and its ffmpeg die at once, no goodbye.
    for process_id in [victim.pid, *descendants(victim.pid)]:
        os.kill(process_id, signal.SIGKILL)
    victim.wait(timeout=10)
    assert media_of(client, media_id)["status"] == "processing"

    def finished():
        body = media_of(client, media_id)
        return body["status"] in ("ready", "failed") and body

    body = wait_for(finished, timeout=180, interval=1, what="the other worker to finish it")
    assert body["status"] == "ready", deployment.logs()
    assert survivor.poll() is None
    ((attempts, worker),) = deployment.sql(
        "select attempts, worker from maintenance_logentrymedia where id = %s", media_id
    )
    assert attempts == 2 and worker.split(":")[1] == str(survivor.pid)
    states = deployment.sql(
        "select state from worker_taskrecord where media_id = %s order by id", media_id
    )
    assert states[0] == ("interrupted",) and states[-1] == ("succeeded",), states
    assert not [key for key in deployment.bucket.object_keys() if key.startswith("originals/")]
    plays(client, body)
    no_media_on_disk(deployment)
