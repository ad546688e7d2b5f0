"""Injected markup cannot run: every page carries a strict Content-Security-Policy, the pages
(and the admin) work under it, and a bucket's presigned media URLs are still allowed."""

import re

import pytest

from the_flip.apps.maintenance.models import LogEntry
from the_flip.settings.base import bucket_origins

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def inline_code(html: str) -> list[str]:
    """What a strict policy would block: inline scripts, style blocks and attributes, and
    on* handlers."""
    found = [m for m in re.findall(r"<script\b[^>]*>", html) if "src=" not in m]
    found += re.findall(r"<style\b", html)
    found += re.findall(r"\sstyle=\"", html)
    found += re.findall(r"\son[a-z]+=\"", html)
    return found


def test_every_page_forbids_inline_code_framing_and_foreign_forms(maintainer_client, machine):
    entry = LogEntry.objects.create(machine=machine, text="Cleaned the playfield")
    pages = ["/", machine.get_absolute_url(), f"/machines/{machine.slug}/log/new/",
             entry.get_absolute_url(), "/accounts/password_change/"]  # fmt: skip
    for url in pages:
        response = maintainer_client.get(url)
        assert response.status_code == 200, url
        csp = policy(response)
        assert csp["default-src"] == ["'self'"]
        assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
        assert csp["connect-src"] == ["'self'"]  # uploader.js talks to our /api/ only
        assert csp["frame-ancestors"] == ["'none'"] and csp["form-action"] == ["'self'"]
        assert csp["base-uri"] == ["'none'"] and csp["object-src"] == ["'none'"]
        assert inline_code(response.content.decode()) == [], url


def test_the_login_page_works_under_the_policy(client):
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" in response
    assert inline_code(response.content.decode()) == []


def test_the_admin_works_under_the_policy(admin_client, machine):
    change = f"/admin/catalog/machine/{machine.pk}/change/"
    for url in ("/admin/", "/admin/catalog/machine/", change, "/admin/catalog/machine/add/",
                "/admin/axes/accessattempt/"):  # fmt: skip
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert policy(response)["script-src"] == ["'self'"]
        # The admin's templates keep code in files; its few inline <script> tags have a src.
        assert [c for c in inline_code(response.content.decode()) if "<style" not in c] == [], url


def test_without_a_bucket_media_comes_only_from_this_site(maintainer_client):
    csp = policy(maintainer_client.get("/"))
    assert csp["media-src"] == ["'self'"] and csp["img-src"] == ["'self'"]


def test_a_bucket_endpoint_is_allowed_for_videos_posters_and_photos():
    # Fly.io Tigris, MinIO, R2...: the endpoint (path-style URLs) and the bucket's virtual host.
    assert bucket_origins("flip-media", "https://fly.storage.tigris.dev", "auto") == [
        "https://fly.storage.tigris.dev",
        "https://flip-media.fly.storage.tigris.dev",
    ]
    assert bucket_origins("m", "http://127.0.0.1:9000/", "") == [
        "http://127.0.0.1:9000",
        "http://m.127.0.0.1:9000",
    ]
    # AWS S3 itself (no endpoint): the bucket's virtual host, global and regional.
    assert bucket_origins("flip-media", "", "eu-west-1") == [
        "https://flip-media.s3.amazonaws.com",
        "https://flip-media.s3.eu-west-1.amazonaws.com",
        "https://s3.amazonaws.com",
        "https://s3.eu-west-1.amazonaws.com",
    ]
    assert bucket_origins("", "https://fly.storage.tigris.dev", "auto") == []


def test_the_policy_follows_the_bucket_settings(tmp_path):
    """Settings derive media-src/img-src from BUCKET_NAME and AWS_ENDPOINT_URL_S3."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.test",
        "DATA_DIR": str(tmp_path),
        "BUCKET_NAME": "flip-media",
        "AWS_ENDPOINT_URL_S3": "https://fly.storage.tigris.dev",
    }
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=60,
    ).stdout  # fmt: skip
    directives = json.loads(out.strip().splitlines()[-1])
    for name in ("media-src", "img-src"):
        assert "https://fly.storage.tigris.dev" in directives[name]
        assert "https://flip-media.fly.storage.tigris.dev" in directives[name]
    assert directives["script-src"] == ["'self'"]
