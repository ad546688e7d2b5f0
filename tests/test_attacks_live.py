"""A stranger and a careless client probe the running site, as deployed (supervisord with the
real web server, tests/live_stack.py): password guessing, odd /media/ requests and absurd API
bodies each get the answer docs/security.md promises, never a 500 or an HTML error page."""

import json
import re
import socket

import pytest

from tests import clips
from tests.live_stack import PASSWORD, USERNAME, Client, Stack

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

FAILURE_LIMIT = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("data"), LOGIN_FAILURE_LIMIT=str(FAILURE_LIMIT)) as running:
        yield running
        log = running.log_tail(200_000)
    # Refused bodies are logged by Django (with its traceback); a crash would be a 500
    # (a 503 is /healthz while the worker starts).
    assert not re.search(r'HTTP/1\.[01]" 500 ', log), log[-6000:]


@pytest.fixture(scope="module")
def maintainer(stack) -> Client:
    return Client(stack.port)


@pytest.fixture(scope="module")
def photo_url(maintainer, tmp_path_factory) -> str:
    photo = clips.photo_jpeg(tmp_path_factory.mktemp("p") / "p.jpg", size=(320, 240))
    entry = maintainer.new_entry(
        maintainer.new_machine("Firepower")["id"],
        files=[("media", "IMG_1.JPG", photo.read_bytes(), "image/jpeg")],
    )
    return entry["media"][0]["photo_url"]


def raw(stack, request: bytes) -> bytes:
    """Send bytes, read everything until the server closes: what is really on the wire."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_stranger_guessing_passwords_is_locked_out_until_an_admin_unlocks(stack, maintainer):
    def try_login(password: str) -> tuple[int, str]:
        stranger = Client.__new__(Client)  # a fresh browser: no cookies yet
        stranger.port, stranger.cookies = stack.port, {}
        _, page = stranger.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return stranger.request(
            "POST", "/accounts/login/",
            body=f"username={USERNAME}&password={password}&csrfmiddlewaretoken={token}",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Referer": f"http://127.0.0.1:{stack.port}/accounts/login/"},
        )  # fmt: skip

    answers = [try_login(f"guess-{n}")[0] for n in range(FAILURE_LIMIT)]
    assert answers == [200] * (FAILURE_LIMIT - 1) + [429]
    status, page = try_login(PASSWORD)  # the right password no longer helps
    assert status == 429 and "Too many failed logins" in page
    assert "ask an admin to unlock you" in page
    # The admin unlocks as docs/security.md says, and the maintainer gets in.
    stack.manage("axes_reset_username", USERNAME)
    stack.manage("axes_reset_ip", "127.0.0.1")
    assert try_login(PASSWORD)[0] == 302


def test_a_null_byte_in_a_media_path_is_not_found(stack, maintainer, photo_url):
    status, _ = maintainer.request("GET", photo_url + "%00.html")
    # nginx refuses a NUL in a path itself (400); Django alone answers 404 (test_serving.py).
    assert status == 400


def test_a_range_of_five_thousand_digits_is_answered(stack, maintainer, photo_url):
    status, _ = maintainer.request("GET", photo_url, headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert status == 416


def test_an_invalid_range_gets_the_whole_file(stack, maintainer, photo_url):
    conn = maintainer.connection()
    conn.request("GET", photo_url, headers=maintainer.headers(Range="bytes=5-1"))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200 and len(body) == int(response.headers["Content-Length"])


def test_head_answers_headers_and_no_body(stack, maintainer, photo_url):
    headers = maintainer.headers(Connection="close")
    request = f"HEAD {photo_url} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    answer = raw(stack, request.encode() + b"\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"Content-Type: image/jpeg" in head and b"Accept-Ranges: bytes" in head
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 0
    assert body == b""


def test_if_modified_since_answers_304(stack, maintainer, photo_url):
    conn = maintainer.connection()
    conn.request("GET", photo_url, headers=maintainer.headers())
    first = conn.getresponse()
    first.read()
    conn.request(
        "GET", photo_url,
        headers=maintainer.headers(**{"If-Modified-Since": first.headers["Last-Modified"]}),
    )  # fmt: skip
    again = conn.getresponse()
    assert again.status == 304 and again.read() == b""
    conn.close()


def json_error(status: int, body, expected_status: int) -> str:
    assert status == expected_status, body
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return body["error"]


def test_absurd_api_bodies_get_json_errors(stack, maintainer, photo_url):
    status, machines = maintainer.request("GET", "/api/machines/")
    machine = machines[0]["id"]
    long_name = "x" * 10_000 + ".jpg"
    status, body = maintainer.post_files(
        "/api/log-entries/", {"machine": machine}, [("media", long_name, b"\xff\xd8", "image/jpeg")]
    )
    assert "file name is too long" in json_error(status, body, 400)
    files = [("media", f"{n}.jpg", b"x", "image/jpeg") for n in range(101)]
    status, body = maintainer.post_files("/api/log-entries/", {"machine": machine}, files)
    assert "at most" in json_error(status, body, 400)
    status, body = maintainer.request(
        "POST", "/api/machines/", body=json.dumps({"name": "x" * 3_000_000}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    json_error(status, body, 413)
    status, body = maintainer.post_files(
        "/api/log-entries/", {"machine": machine, "text": "x" * 3_000_000}, []
    )
    json_error(status, body, 413)


def test_pages_carry_the_content_security_policy(stack, maintainer):
    conn = maintainer.connection()
    conn.request("GET", "/", headers=maintainer.headers())
    response = conn.getresponse()
    response.read()
    conn.close()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
