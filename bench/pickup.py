#!/usr/bin/env python
"""Pick-up latency: from an upload's 201 to the worker marking the video `processing`.

    .venv/bin/python bench/pickup.py [--jobs 20]

Runs on SQLite, then on PostgreSQL when DATABASE_URL or TEST_DATABASE_URL names one (a
scratch database `<name>_bench` is created there and dropped after). Each backend gets a
temp DATA_DIR, its own `manage.py run_worker` and 20 uploads of a tiny phone clip through
the real upload view (Django's test client: real upload handlers, real on-commit enqueue).
The worker is idle before each upload (0.5-1.5 s pause), so the SQLite poll has backed off
to its maximum delay: the worst case, not the warm one. Latency = the row's
processing_started_at (written by the worker) minus the wall-clock time of the 201.
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(jobs: int) -> None:
    """Inside one backend's environment: set up, start a worker, upload, measure."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client

    from tests import clips
    from the_flip.apps.catalog.models import Machine
    from the_flip.apps.maintenance.models import LogEntryMedia
    from the_flip.apps.worker.models import WorkerHeartbeat

    call_command("migrate", "--noinput", verbosity=0)
    call_command("setup_queue", verbosity=0)
    clip = clips.android_h264_mp4(Path(os.environ["DATA_DIR"]) / "VID_bench.mp4")
    data = clip.read_bytes()
    user = get_user_model().objects.create_user(
        "bench", password="bench-bench-bench", is_staff=True
    )
    machine = Machine.objects.create(name="Bench Machine")
    client = Client()
    client.force_login(user)

    log = open(Path(os.environ["DATA_DIR"]) / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"],
        cwd=ROOT,
        env={**os.environ, "WORKER_MAX_TASKS": "0"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not WorkerHeartbeat.objects.exists():  # the worker's first beat: it is up
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start; see worker.log")
            time.sleep(0.1)
        time.sleep(1.5)
        latencies = []
        for _ in range(jobs):
            time.sleep(random.uniform(0.5, 1.5))
            response = client.post(
                "/api/log-entries/",
                {
                    "machine": machine.pk,
                    "text": "bench",
                    "media": [SimpleUploadedFile(clip.name, data, "video/mp4")],
                },
            )
            created = time.time()
            assert response.status_code == 201, response.content
            media_id = response.json()["media"][0]["id"]
            deadline = time.monotonic() + 60
            while True:
                media = LogEntryMedia.objects.get(pk=media_id)
                if media.transcode_status in ("ready", "failed"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"media {media_id} was never processed")
                time.sleep(0.02)
            latencies.append(media.processing_started_at.timestamp() - created)
        print(json.dumps(latencies))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def run_backend(label: str, env: dict, jobs: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data_dir:
        env = {
            **env,
            "DATA_DIR": data_dir,
            "DJANGO_SETTINGS_MODULE": "the_flip.settings.prod",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "testserver,localhost",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--jobs", str(jobs)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            log = Path(data_dir) / "worker.log"
            sys.exit(
                f"{label}: failed\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}\n"
                + (log.read_text()[-2000:] if log.exists() else "")
            )
        return json.loads(done.stdout.strip().splitlines()[-1])


def scratch_database(url: str):
    """Create `<name>_bench` next to the given database; return its URL and a cleanup."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_bench"
    admin = urlunsplit(parts._replace(scheme="postgresql"))

    def execute(sql: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql)

    execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name)), lambda: execute(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


def report(label: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    cells = [label, str(len(ms)), *(f"{v:.0f} ms" for v in (p50, p95, ms[0], ms[-1]))]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.jobs)

    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    rows = [report("SQLite (polled)", run_backend("SQLite", base, args.jobs))]
    pg_url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg_url and pg_url.startswith(("postgres://", "postgresql://")):
        url, cleanup = scratch_database(pg_url)
        try:
            latencies = run_backend("PostgreSQL", {**base, "DATABASE_URL": url}, args.jobs)
            rows.append(report("PostgreSQL (LISTEN/NOTIFY)", latencies))
        finally:
            cleanup()
    else:
        print("(no DATABASE_URL/TEST_DATABASE_URL: PostgreSQL skipped)", file=sys.stderr)
    print("| queue | jobs | p50 | p95 | min | max |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
