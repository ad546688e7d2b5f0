"""/healthz and `manage.py check_worker`: volunteers are told clearly when something is wrong."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from the_flip.apps.maintenance import attachments
from the_flip.apps.worker.models import TaskRecord, WorkerHeartbeat

from .worker_helpers import flush_queue, make_video

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue():
    flush_queue()


def beat(seconds_ago: float, worker: str = "worker-host:7:a1b2c3") -> None:
    """A worker on another machine last beat ``seconds_ago``."""
    WorkerHeartbeat.objects.update_or_create(
        worker=worker,
        defaults={
            "beat_at": timezone.now() - timedelta(seconds=seconds_ago),
            "host": "worker-host/1",
            "pid": 7,
        },
    )


def check_worker(capsys) -> tuple[int, str, str]:
    """Run the command as `manage.py` would: returning normally is exit status 0."""
    try:
        call_command("check_worker")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_healthz_is_ok_with_a_fresh_heartbeat_and_nothing_stuck(client):
    beat(10)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["stuck_videos"] == 0
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_without_any_heartbeat(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["reason"] == "the worker has never reported in"


def test_healthz_is_503_when_the_heartbeat_is_old(client):
    beat(600)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "no worker heartbeat for 600 s" in response.json()["reason"]


def test_a_long_transcode_that_reports_progress_keeps_the_worker_healthy(client, machine):
    beat(600)  # the heartbeat task waits behind a long transcode on the only worker thread
    make_video(machine, status="processing", attempts=1, age=1800, heartbeat_age=1)
    assert client.get("/healthz").status_code == 200


def test_healthz_is_503_when_a_video_is_stuck(client, machine):
    beat(5)
    make_video(machine, status="pending", age=16 * 60)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert (
        "1 video(s) stuck in pending/processing for over 15 minutes" in (response.json()["reason"])
    )


HEALTHZ_IN_A_FRESH_PROCESS = """
import json, logging, django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


@pytest.mark.parametrize("database", ["postgres on a closed port", "sqlite file that cannot open"])
def test_healthz_gives_a_plain_reason_when_the_database_is_down(tmp_path, database):
    """A database that is really down (nothing listens on the port / the file cannot be
    opened): anonymous /healthz says so in plain words; the details go to the log only."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.live_stack import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("THE_FLIP_TEST_")}
    env.update(DJANGO_SETTINGS_MODULE="the_flip.settings.test", DATA_DIR=str(tmp_path))
    env.pop("DATABASE_URL", None)
    if database.startswith("postgres"):
        env["DATABASE_URL"] = f"postgres://ci:secret-pw@127.0.0.1:{free_port()}/the_flip"
    else:
        (tmp_path / "db.sqlite3").mkdir()  # a folder where the database file should be
    result = subprocess.run(
        [sys.executable, "-c", HEALTHZ_IN_A_FRESH_PROCESS], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"status": 503, "body": {"status": "error", "reason": "database unreachable"}}
    # The operator's log has what went wrong, with the driver's own words.
    assert "healthz: the database is unreachable" in result.stderr
    driver_words = "Connection refused" if database.startswith("postgres") else "unable to open"
    assert driver_words in result.stderr
    assert "secret-pw" not in result.stdout


def test_check_worker_healthy(capsys, machine):
    beat(20)
    media = make_video(machine, status="ready")
    assert media.transcode_status == "ready"
    code, out, err = check_worker(capsys)
    assert code == 0, err
    assert "succeeded (24 h):     1" in out
    assert "queue length:         0" in out
    assert "OK: the worker is healthy." in out


def test_check_worker_failing_names_the_latest_reason(capsys, machine):
    beat(20)
    make_video(machine, status="failed", error="This file is not a video we can read.")
    code, out, err = check_worker(capsys)
    assert code == 1
    assert "failed (24 h):        1" in out
    assert "This file is not a video we can read." in out
    assert "every video in the last 24 h failed" in err


def test_check_worker_stuck_and_queue(capsys, machine, django_capture_on_commit_callbacks):
    beat(20)
    stuck = make_video(machine, status="processing", attempts=1, age=3600, heartbeat_age=1200)
    waiting = make_video(machine, status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        attachments.request_transcode(waiting)
    TaskRecord.objects.filter(media=waiting).update(
        enqueued_at=timezone.now() - timedelta(minutes=20)
    )
    code, out, err = check_worker(capsys)
    assert code == 1
    assert "queue length:         1" in out
    assert "oldest queued task:   20 min" in out
    assert f"video {stuck.pk}: processing" in out
    assert "stuck in pending/processing" in err
    assert "the oldest queued task has waited 20 minutes" in err


def test_check_worker_without_heartbeat_and_json(capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command("check_worker", "--json")
    body = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 1
    assert body["status"] == "error"
    assert body["problems"] == ["the worker has never reported in"]


def test_healthz_answers_any_host_over_plain_http(client, settings):
    """Fly.io and Railway probe from inside their network with their own Host header."""
    settings.ALLOWED_HOSTS = ["flip.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    beat(1)
    response = client.get("/healthz", HTTP_HOST="10.0.0.5:8000")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    # ...while every other page still checks the host.
    assert client.get("/accounts/login/", HTTP_HOST="10.0.0.5:8000").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_an_operator_running_check_worker_sees_the_queue(machine):
    """`manage.py check_worker` is a process of its own: it must know the worker's tasks to
    read what is queued (it once printed "oldest queued task: —" while videos waited, and
    stderr filled with "not found in TaskRegistry")."""
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    beat(20)
    waiting = make_video(machine, status="pending")
    attachments.request_transcode(waiting)  # autocommit: queued at once
    TaskRecord.objects.filter(media=waiting).update(
        enqueued_at=timezone.now() - timedelta(minutes=20)
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check_worker", "--json"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "TaskRegistry" not in result.stderr, result.stderr
    body = json.loads(result.stdout)
    assert body["queue_length"] == 1
    assert body["oldest_queued_age"] >= 20 * 60
    assert "the oldest queued task has waited 20 minutes" in body["problems"]
    assert result.returncode == 1
