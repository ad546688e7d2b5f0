"""Production settings pass Django's deployment checklist (`manage.py check --deploy`).

Runs on the host in a subprocess, with the environment a platform gives the container:
the production settings module, a long random SECRET_KEY, FORCE_HTTPS on (fly.toml and
railway.toml set it), DEBUG off.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests' need, not production's.
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "FORCE_HTTPS",
            "DATABASE_URL",
            "ALLOWED_HOSTS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="the_flip.settings.prod",
        DATA_DIR=str(tmp_path / "data"),
        SECRET_KEY=secrets.token_urlsafe(50),
        **env,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_check(tmp_path, FORCE_HTTPS="1", DEBUG="0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output, output


def test_check_deploy_is_clean_for_a_platform_host(tmp_path):
    result = run_check(
        tmp_path,
        FORCE_HTTPS="1",
        ALLOWED_HOSTS="the-flip.fly.dev",
        CSRF_TRUSTED_ORIGINS="https://the-flip.fly.dev",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_without_force_https(tmp_path):
    """The checklist really runs: plain HTTP (the local default) is reported."""
    result = run_check(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr  # SECURE_SSL_REDIRECT


def test_a_fresh_volume_needs_nothing_made_by_hand(tmp_path):
    """A platform mounts an empty volume (or none yet): loading the settings creates nothing,
    and the first command finds its folders made where they are needed (the queue's by the
    queue, the media and upload folders by the maintenance app)."""
    data = tmp_path / "volume" / "data"
    env = {**os.environ, "DATA_DIR": str(data), "SECRET_KEY": secrets.token_urlsafe(50)}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    imported = subprocess.run(
        [sys.executable, "-c", "import the_flip.settings.prod"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert not data.exists(), "importing the settings made folders"
    result = run_check(tmp_path / "volume", FORCE_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in data.iterdir()} >= {"huey.sqlite3", "media", "tmp"}
