"""A client sends the API something absurd (a 10,000-character file name, 101 files, a 3 MB JSON
body or text field): the answer is the contract's JSON error, never Django's HTML page."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = pytest.mark.django_db

THREE_MB = 3 * 1024 * 1024


@pytest.fixture
def api(maintainer) -> Client:
    """A maintainer's client that, like a real one, passes the CSRF check with the header."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(maintainer)
    client.get("/accounts/login/")  # sets the csrftoken cookie
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client


def assert_json_error(response, status: int) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    message = response.json()["error"]
    assert isinstance(message, str) and message and "<" not in message
    return message


def test_a_file_name_of_ten_thousand_characters(api, machine, photo):
    # Built by hand: Django's test client would shorten the name to 255 characters itself.
    name = "x" * 10_000 + ".jpg"
    body = (
        (
            f'--b\r\nContent-Disposition: form-data; name="machine"\r\n\r\n{machine.pk}\r\n'
            f'--b\r\nContent-Disposition: form-data; name="media"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo.read_bytes()
        + b"\r\n--b--\r\n"
    )
    response = api.generic(
        "POST", "/api/log-entries/", body, content_type="multipart/form-data; boundary=b"
    )
    assert "file name is too long" in assert_json_error(response, 400)
    assert not LogEntry.objects.exists() and not LogEntryMedia.objects.exists()


def test_one_hundred_and_one_files(api, machine):
    uploads = [SimpleUploadedFile(f"{n}.jpg", b"x", content_type="image/jpeg") for n in range(101)]
    response = api.post("/api/log-entries/", {"machine": machine.pk, "media": uploads})
    assert "at most" in assert_json_error(response, 400)
    assert not LogEntry.objects.exists()


def test_a_three_megabyte_json_body(api):
    body = json.dumps({"name": "x" * THREE_MB})
    response = api.post("/api/machines/", body, content_type="application/json")
    assert "MB" in assert_json_error(response, 413)


def test_a_three_megabyte_text_field(api, machine):
    response = api.post("/api/log-entries/", {"machine": machine.pk, "text": "x" * THREE_MB})
    assert "MB" in assert_json_error(response, 413)
    assert not LogEntry.objects.exists()


def test_too_many_form_fields(api, machine):
    fields = {f"field{n}": "x" for n in range(1100)}
    response = api.post("/api/log-entries/", {"machine": machine.pk, **fields})
    assert_json_error(response, 400)


def test_a_broken_multipart_body(api, machine):
    response = api.generic(
        "POST", "/api/log-entries/", b"--nope\r\ngarbage",
        content_type="multipart/form-data; boundary=nope",
    )  # fmt: skip
    assert_json_error(response, 400)


def test_pages_outside_the_api_keep_djangos_answers(maintainer_client, machine):
    # The HTML pages answer HTML (400), as before: only /api/ speaks JSON.
    response = maintainer_client.post(
        f"/machines/{machine.slug}/log/new/", {"text": "x" * THREE_MB}
    )
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


def test_an_unknown_api_url_answers_json(api, client):
    assert "no such API endpoint" in assert_json_error(api.get("/api/no-such-thing/"), 404)
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_a_crash_in_the_api_still_answers_json(rf):
    from the_flip.apps.maintenance.api import server_error

    response = server_error(rf.get("/api/machines/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"].startswith("Something went wrong on the server")
    assert server_error(rf.get("/"))["Content-Type"].startswith("text/html")
