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


def test_only_the_account_pages_that_work_are_offered(client, maintainer):
    # No mail is configured, so there is no "forgot password" form that would never send one.
    for url in ("/accounts/password_reset/", "/accounts/reset/MQ/set-password/"):
        assert client.get(url).status_code == 404
    assert client.get("/accounts/login/").status_code == 200
    assert "Forgotten your password" not in client.get("/admin/login/").content.decode()
    # A maintainer changes their own password, and the pages around it render.
    client.force_login(maintainer)
    form = client.get("/accounts/password_change/")
    assert form.status_code == 200 and 'name="new_password1"' in form.content.decode()
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "flippers-and-coils",
            "new_password1": "tilt-bob-and-plumb",
            "new_password2": "tilt-bob-and-plumb",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    assert client.get("/accounts/password_change/done/").status_code == 200
    maintainer.refresh_from_db()
    assert maintainer.check_password("tilt-bob-and-plumb")
    # Logging out is a POST (the header's button) and lands on the login page.
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
