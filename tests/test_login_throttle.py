"""A stranger guesses passwords: after a few wrong ones the door stays shut for a while, the
page says why, and an admin can open it again."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def guess(client, username, password="wrong-guess", path="/accounts/login/", **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def test_a_stranger_guessing_one_maintainers_password_is_locked_out(client, maintainer):
    for _ in range(2):
        assert guess(client, "ada").status_code == 200  # the form again: wrong password
    assert guess(client, "ada").status_code == 429  # the third wrong one shuts the door
    # Even the right password is refused now, with a sentence instead of a bare 403.
    response = guess(client, "ada", "flippers-and-coils")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page and "try again in 15 minutes" in page
    assert "ask an admin to unlock you" in page
    assert 'name="username"' in page  # still the login page, not an error page
    assert "_auth_user_id" not in client.session


def test_guessing_from_many_addresses_still_locks_the_username(client, maintainer):
    for n in range(3):
        guess(client, "ada", REMOTE_ADDR=f"203.0.113.{n}")
    assert guess(client, "ada", "flippers-and-coils", REMOTE_ADDR="198.51.100.7").status_code == 429


def test_guessing_many_usernames_from_one_address_locks_that_address(client, maintainer):
    for name in ("bob", "carol", "dave"):
        guess(client, name, REMOTE_ADDR="203.0.113.9")
    # The real maintainer, from that same address, must wait too...
    assert guess(client, "ada", "flippers-and-coils", REMOTE_ADDR="203.0.113.9").status_code == 429
    # ...but from their own phone they get in.
    assert guess(client, "ada", "flippers-and-coils", REMOTE_ADDR="198.51.100.7").status_code == 302


def test_the_admin_login_is_throttled_too(client, maintainer):
    for _ in range(2):
        assert guess(client, "ada", path="/admin/login/").status_code == 200
    assert guess(client, "ada", path="/admin/login/").status_code == 429
    response = guess(client, "ada", "flippers-and-coils", path="/admin/login/")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()


def test_an_api_client_gets_the_reason_as_json(client, maintainer):
    for _ in range(3):
        guess(client, "ada")
    response = guess(client, "ada", "flippers-and-coils", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response.json()["error"].startswith("Too many failed logins")


def test_a_typo_then_the_right_password_starts_the_count_afresh(client, maintainer):
    for _ in range(2):
        guess(client, "ada")
    assert guess(client, "ada", "flippers-and-coils").status_code == 302
    client.logout()
    for _ in range(2):
        guess(client, "ada")
    assert guess(client, "ada", "flippers-and-coils").status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, maintainer, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt

    for _ in range(3):
        guess(client, "ada")
    assert guess(client, "ada", "flippers-and-coils").status_code == 429
    # 15 minutes later (the attempts are dated back rather than the test waiting).
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16)
    )
    assert guess(client, "ada", "flippers-and-coils").status_code == 302


def test_an_admin_unlocks_a_maintainer_with_one_command(client, maintainer):
    for n in range(3):
        guess(client, "ada", REMOTE_ADDR=f"203.0.113.{n}")
    assert guess(client, "ada", "flippers-and-coils").status_code == 429
    call_command("axes_reset_username", "ada")
    assert guess(client, "ada", "flippers-and-coils").status_code == 302


def test_an_admin_unlocks_from_the_admin_page(client, maintainer, admin_client):
    from axes.models import AccessAttempt

    for _ in range(3):
        guess(client, "ada")
    page = admin_client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "ada" in page.content.decode()
    attempt = AccessAttempt.objects.get(username="ada")
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert guess(client, "ada", "flippers-and-coils").status_code == 302


def test_behind_our_nginx_the_address_comes_from_x_real_ip(client, maintainer):
    # nginx connects from 127.0.0.1 (the test client's REMOTE_ADDR) and names the client.
    for n in range(3):
        guess(client, f"stranger{n}", HTTP_X_REAL_IP="203.0.113.50")
    locked = guess(client, "ada", "flippers-and-coils", HTTP_X_REAL_IP="203.0.113.50")
    assert locked.status_code == 429
    # A different client behind the same nginx is not punished for it.
    ok = guess(client, "ada", "flippers-and-coils", HTTP_X_REAL_IP="198.51.100.7")
    assert ok.status_code == 302


def test_over_nginx_unix_socket_the_address_comes_from_x_real_ip(client, maintainer):
    # gunicorn on a unix socket leaves REMOTE_ADDR empty; only nginx can connect there.
    for n in range(3):
        guess(client, f"stranger{n}", REMOTE_ADDR="", HTTP_X_REAL_IP="203.0.113.70")
    locked = guess(
        client, "ada", "flippers-and-coils", REMOTE_ADDR="", HTTP_X_REAL_IP="203.0.113.70"
    )
    assert locked.status_code == 429
    ok = guess(client, "ada", "flippers-and-coils", REMOTE_ADDR="", HTTP_X_REAL_IP="198.51.100.8")
    assert ok.status_code == 302


def test_a_stranger_cannot_dodge_the_address_lock_with_a_forged_header(client, maintainer):
    # Straight from the internet (not from our proxy), X-Real-IP is the stranger's own word.
    for n in range(3):
        guess(client, f"stranger{n}", REMOTE_ADDR="203.0.113.60", HTTP_X_REAL_IP=f"10.0.0.{n}")
    response = guess(
        client, "ada", "flippers-and-coils", REMOTE_ADDR="203.0.113.60",
        HTTP_X_REAL_IP="10.9.9.9", HTTP_X_FORWARDED_FOR="10.9.9.9",
    )  # fmt: skip
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("203.0.113.5", {"HTTP_X_REAL_IP": "10.0.0.1"}, "203.0.113.5"),  # not our proxy
        ("127.0.0.1", {"HTTP_X_REAL_IP": "203.0.113.5"}, "203.0.113.5"),
        ("::1", {"HTTP_X_REAL_IP": "2001:db8::7"}, "2001:db8::7"),
        ("", {"HTTP_X_FORWARDED_FOR": "10.0.0.1, 203.0.113.5"}, "203.0.113.5"),  # nginx's own
        ("127.0.0.1", {"HTTP_X_REAL_IP": "not-an-address"}, "127.0.0.1"),
        ("127.0.0.1", {}, "127.0.0.1"),  # a local request without nginx
        ("", {}, "0.0.0.0"),  # no address: one shared bucket (a valid inet for PostgreSQL)
    ],
)
def test_which_address_counts(rf, peer, headers, expected):
    from the_flip.apps.accounts.throttle import client_ip

    assert client_ip(rf.post("/accounts/login/", REMOTE_ADDR=peer, **headers)) == expected
