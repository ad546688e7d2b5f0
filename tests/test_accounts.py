"""The first maintainer comes from the environment (the container's first boot does this)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_createsuperuser_noinput_needs_only_username_and_password(monkeypatch, client):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "chief")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password")
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    call_command("createsuperuser", "--noinput", verbosity=0)
    chief = get_user_model().objects.get(username="chief")
    assert chief.is_staff and chief.is_superuser
    # ...and that maintainer can log in with the standard form fields.
    response = client.post(
        "/accounts/login/", {"username": "chief", "password": "a-long-enough-password"}
    )
    assert response.status_code == 302
    assert client.get("/api/machines/").status_code == 200
