"""The museum outgrows one machine: the web and two workers run as separate processes, each
with a DATA_DIR of its own (no shared disk), on one PostgreSQL database and one bucket.

Production settings, real gunicorn, real `manage.py run_worker` processes, moto's S3 server
over HTTP, a fresh PostgreSQL database of this module's own.
"""

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.buckets import Bucket
from tests.conftest import ROOT, descendants, require, wait_for
from tests.live_stack import Client, free_port

pytestmark = [pytest.mark.bucket, pytest.mark.postgres, pytest.mark.slow]

USERNAME, PASSWORD = "volunteer", "flippers-and-coils-" + secrets.token_hex(4)


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
    """The processes of a two-role deployment, started as a platform would start them."""

    def __init__(self, root: Path, database_url: str, bucket: Bucket):
        self.root = root
        self.database_url = database_url
        self.bucket = bucket
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("THE_FLIP_TEST_")},
            "DJANGO_SETTINGS_MODULE": "the_flip.settings.prod",
            "SECRET_KEY": "roles-test-" + secrets.token_hex(24),
            "DATABASE_URL": database_url,
            **bucket.env,
            "PYTHONUNBUFFERED": "1",
            "WORKER_MAX_TASKS": "0",  # no supervisord here to start a fresh one
            # A killed worker's video is noticed by the other at its next minute's reset.
            "TRANSCODE_STALE_SECONDS": "5",
            "WORKER_STARTUP_STALE_SECONDS": "1",
            "WORKER_BEAT_SECONDS": "2",
        }
        for name in ("DEBUG", "FORCE_HTTPS", "SENTRY_DSN", "ROLE"):
            self.env.pop(name, None)
        self.processes: list[subprocess.Popen] = []
        self.port = free_port()

    def data_dir(self, role: str) -> Path:
        folder = self.root / role
        folder.mkdir(exist_ok=True)
        return folder

    def manage(self, *args: str, role: str = "web") -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, "DATA_DIR": str(self.data_dir(role))},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def _start(self, role: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = (self.root / f"{role}.log").open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, "DATA_DIR": str(self.data_dir(role)), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.role = role
        self.processes.append(process)
        return process

    def start_web(self) -> None:
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self._start("web", [gunicorn, "--config", "deploy/gunicorn.conf.py",
                            "the_flip.wsgi:application"],
                    PORT=str(self.port), BIND_HOST="127.0.0.1", WEB_CONCURRENCY="1")  # fmt: skip

    def start_worker(self, role: str) -> subprocess.Popen:
        return self._start(role, [sys.executable, "manage.py", "run_worker"])

    def log(self, role: str) -> str:
        path = self.root / f"{role}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def deployment(database_url, s3_server, tmp_path_factory):
    bucket = Bucket(s3_server)
    site = Deployment(tmp_path_factory.mktemp("roles"), database_url, bucket)
    site.manage("check")  # what `make run` and the entrypoint run first: the bucket answers
    site.manage("migrate", "--noinput", "-v0")
    site.manage("setup_queue", "-v0")
    site.manage("collectstatic", "--noinput", "-v0")
    site.env.update(DJANGO_SUPERUSER_USERNAME=USERNAME, DJANGO_SUPERUSER_PASSWORD=PASSWORD,
                    DJANGO_SUPERUSER_EMAIL="volunteer@example.org")  # fmt: skip
    site.manage("createsuperuser", "--noinput")
    site.start_web()
    site.workers = {role: site.start_worker(role) for role in ("worker-a", "worker-b")}

    def ready():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
            conn.request("GET", "/healthz")
            body = json.loads(conn.getresponse().read() or b"{}")
            return body.get("workers_alive") == 2 and body
        except OSError:
            return False

    try:
        wait_for(ready, timeout=60, what="the web and both workers to be healthy")
    except AssertionError as slow:
        site.stop()
        raise AssertionError(site.log("web") + site.log("worker-a")) from slow
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


def upload(client: Client, machine_id: int, clip: Path, content_type: str) -> int:
    status, body = client.post_files(
        "/api/log-entries/",
        {"machine": machine_id, "text": "rubber rings replaced"},
        [("media", clip.name, clip.read_bytes(), content_type)],
    )
    assert status == 201, body
    return body["media"][0]["id"]


def no_media_on_disk(site: Deployment) -> None:
    for role in ("web", "worker-a", "worker-b"):
        media = site.data_dir(role) / "media"
        assert not media.exists() or not any(media.rglob("*")), f"{role} kept media on disk"


def test_ten_videos_at_once_are_each_transcoded_exactly_once_by_two_workers(
    deployment, android_clip
):
    client = Client(deployment.port, USERNAME, PASSWORD)
    status, machine = client.request(
        "POST", "/api/machines/", body=json.dumps({"name": "Medieval Madness"}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 201, machine
    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(lambda _: upload(client, machine["id"], android_clip, "video/mp4"),
                            range(10)))  # fmt: skip

    def all_done():
        states = [media_of(client, media_id)["status"] for media_id in ids]
        return all(state in ("ready", "failed") for state in states) and states

    states = wait_for(all_done, timeout=240, interval=1, what="ten videos to be transcoded")
    assert states == ["ready"] * 10, deployment.log("worker-a") + deployment.log("worker-b")
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
    assert pids == {w.pid for w in deployment.workers.values()}, "both workers took a share"

    # The web and the workers share no disk: everything is in the bucket.
    no_media_on_disk(deployment)
    keys = deployment.bucket.object_keys()
    assert not [key for key in keys if key.startswith("originals/")]
    assert len([key for key in keys if key.startswith("videos/")]) >= 10
    for media_id in ids[:3]:
        plays(client, media_of(client, media_id))


def test_a_worker_killed_mid_transcode_loses_nothing_the_other_finishes_it(deployment, media_dir):
    from tests import clips

    clip = clips.iphone_hevc_mov(media_dir / "IMG_KILL.MOV", size="640x360", seconds=12)
    client = Client(deployment.port, USERNAME, PASSWORD)
    _, machines = client.request("GET", "/api/machines/")
    media_id = upload(client, machines[0]["id"], clip, "video/quicktime")

    def running():
        rows = deployment.sql(
            "select worker, progress from maintenance_logentrymedia where id = %s", media_id
        )
        worker, progress = rows[0]
        return worker and (progress or 0) > 0 and worker

    holder = wait_for(running, timeout=90, interval=0.1, what="ffmpeg to be running")
    pid = int(holder.split(":")[1])
    victim = next(p for p in deployment.workers.values() if p.pid == pid)
    survivor = next(p for p in deployment.workers.values() if p.pid != pid)
    # Like the OOM killer: the worker and its ffmpeg die at once, no goodbye.
    for process_id in [victim.pid, *descendants(victim.pid)]:
        os.kill(process_id, signal.SIGKILL)
    victim.wait(timeout=10)
    assert media_of(client, media_id)["status"] == "processing"

    def finished():
        body = media_of(client, media_id)
        return body["status"] in ("ready", "failed") and body

    body = wait_for(finished, timeout=180, interval=1, what="the other worker to finish it")
    assert body["status"] == "ready", deployment.log(survivor.role)
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
