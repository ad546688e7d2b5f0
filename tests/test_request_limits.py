"""Who may send how large a body, decided before a byte of it is read (Django's inner wall;
nginx's outer one is tests/test_web_front.py). A stranger gets 1 MB everywhere; a maintainer
gets 200 MB per file on the addresses that take files, and 1 MB elsewhere."""

import pytest

from the_flip.apps.maintenance.models import LogEntry
from the_flip.apps.maintenance.request_limits import upload_routes

MB = 1024 * 1024


class UnreadBody:
    """A request body that fails the test if anybody reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def declared(length: int, content_type: str) -> dict:
    return {"wsgi.input": UnreadBody(), "CONTENT_LENGTH": str(length), "CONTENT_TYPE": content_type}


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=xyz"


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/accounts/login/", FORM),
        ("/accounts/logout/", FORM),
        ("/admin/login/", FORM),
        ("/machines/{slug}/log/new/", MULTIPART),
    ],
)
def test_a_stranger_posting_300_mb_to_a_page_gets_a_plain_413_unread(
    client, machine, path, content_type
):
    client.cookies["csrftoken"] = "a" * 32  # self-made, as an attacker would
    response = client.post(path.format(slug=machine.slug), **declared(300 * MB, content_type))
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "larger than 1 MB" in response.content.decode()
    assert response["Connection"] == "close"


@pytest.mark.parametrize("path", ["/api/log-entries/", "/api/machines/", "/api/media/1/retry/"])
def test_a_stranger_posting_300_mb_to_the_api_gets_a_json_413_unread(client, path):
    response = client.post(path, **declared(300 * MB, MULTIPART))
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["error"]


def test_a_maintainer_gets_1_mb_where_no_files_are_taken(maintainer_client):
    response = maintainer_client.post("/api/machines/", **declared(2 * MB, "application/json"))
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["error"]


def test_a_maintainers_over_cap_upload_is_refused_unread_in_the_uploads_words(
    maintainer_client, machine
):
    entry = LogEntry.objects.create(machine=machine)
    response = maintainer_client.post(
        f"/api/log-entries/{entry.pk}/media/", **declared(300 * MB, MULTIPART)
    )
    assert response.status_code == 413
    assert "larger than 200 MB" in response.json()["error"]


def test_a_small_body_from_a_stranger_still_gets_the_usual_answer(client):
    """Under the cap nothing changes: the API says to log in, the login form is checked."""
    response = client.post("/api/log-entries/", {"machine": "1"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "who, path, length, answer",
    [
        ("stranger", "/api/log-entries/", 300 * MB, 403),
        ("stranger", "/api/log-entries/", 1000, 204),
        ("stranger", "/api/log-entries/", "chunked", 403),  # no length to judge
        ("stranger", "/machines/gorgar/log/new/", None, 204),  # no body: the GET of the form
        ("maintainer", "/api/log-entries/", 300 * MB, 204),
        ("maintainer", "/api/log-entries/", 2100 * MB, 403),
        ("maintainer", "/api/log-entries/5/media/", 300 * MB, 403),
        ("maintainer", "/api/log-entries/5/media/", 150 * MB, 204),
        ("maintainer", "/machines/gorgar/log/new/?x=1", 300 * MB, 204),
        ("maintainer", "/api/machines/", 2 * MB, 403),
        ("maintainer", "/no/such/page/", 2 * MB, 403),
    ],
)
def test_nginx_asks_before_reading_a_body_and_django_answers_with_the_same_rule(
    client, maintainer, who, path, length, answer
):
    if who == "maintainer":
        client.force_login(maintainer)
    headers = {"HTTP_X_BODY_GATE_URI": path}
    if length == "chunked":
        headers["HTTP_X_BODY_GATE_TRANSFER_ENCODING"] = "chunked"
    elif length is not None:
        headers["HTTP_X_BODY_GATE_LENGTH"] = str(length)
    assert client.get("/_body_gate", **headers).status_code == answer


def test_nginx_gets_an_answer_not_a_redirect_when_https_is_forced(client, settings):
    """With FORCE_HTTPS a plain-http request is redirected, but nginx's question about it is
    answered (a redirect would be an error to nginx, a 500 for the client)."""
    settings.SECURE_SSL_REDIRECT = True
    headers = {"HTTP_X_BODY_GATE_URI": "/api/log-entries/", "HTTP_X_BODY_GATE_LENGTH": "10"}
    assert client.get("/_body_gate", **headers).status_code == 204
    assert client.get("/accounts/login/").status_code == 301


def test_nginx_learns_the_upload_addresses_from_the_views():
    routes = {route.regex: route for route in upload_routes()}
    assert set(routes) >= {
        r"^/api/log\-entries/$",
        r"^/api/log\-entries/(?:[0-9]+)/media/$",
        r"^/machines/(?:[-a-zA-Z0-9_]+)/log/new/$",
    }
    tus_patch = [r for r in routes if "uploads/(?:[0-9a-f]{8}" in r]  # one tus upload's PATCHes
    assert len(tus_patch) == 1 and routes[tus_patch[0]].cap == 200 * MB + MB
    assert routes[r"^/api/log\-entries/$"].cap == 10 * 200 * MB + MB
    assert routes[r"^/api/log\-entries/(?:[0-9]+)/media/$"].cap == 200 * MB + MB
    assert not any("media/(?:[0-9]+)/$" in regex for regex in routes)  # status reads: no files
