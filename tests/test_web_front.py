"""The web front as deployed: nginx in front of gunicorn under supervisord (deploy/start), in each
ROLE, against slow phones, strangers' large bodies and a platform's TLS proxy.

Everything talks to 127.0.0.1 on free ports; every slow client is a bounded loop that stops by
itself. Two kinds of stack: the real one (tests/live_stack.py: nginx + gunicorn + Django + the
worker, as `make run`), and nginx alone (`manage.py run_nginx`, the same rendered config) in
front of a small recording server, to see exactly what nginx passes on in both directions.
"""

import contextlib
import hashlib
import http.client
import json
import os
import selectors
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests import clips
from tests.live_stack import ROOT, Client, Stack, clean_stack, free_port, is_listening

pytestmark = [pytest.mark.slow, pytest.mark.own_database]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def bodies_on_disk(stack: Stack) -> set[str]:
    """Files under DATA_DIR/tmp, and files there that nginx or gunicorn hold open: nginx
    unlinks its temp file the moment it opens it, so only /proc shows a buffered body."""
    tmp = stack.data_dir / "tmp"
    found = files_under(tmp)
    for pid in stack.pids("nginx") + stack.pids("web"):
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(tmp)):
                found.add(target.removeprefix(str(tmp) + "/"))
    return found


def listening_tcp_ports(pids: list[int]) -> set[int]:
    """TCP ports these processes listen on (from ss, which names each socket's process)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


# --- Roles ------------------------------------------------------------------------------------


def test_an_unknown_role_is_refused_at_start_with_a_sentence():
    result = subprocess.run(
        [str(ROOT / "deploy" / "start")], env={**os.environ, "ROLE": "webserver"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "ROLE=webserver is not a role" in result.stderr
    assert "all" in result.stderr and "web" in result.stderr and "worker" in result.stderr


def test_web_and_worker_roles_run_apart_on_one_database(tmp_path):
    """ROLE=web serves through nginx with no consumer; ROLE=worker has no port at all; together
    (one database) the web's /healthz sees the worker's heartbeat."""
    data_dir = tmp_path / "data"
    with Stack(data_dir, role="web") as web:
        assert web.pids("nginx") and web.pids("web")
        assert web.pids("worker") == []
        status, body = web.healthz()
        assert status == 503 and "never reported" in json.dumps(body), body
        # gunicorn listens on the unix socket only; nginx is the one on PORT.
        assert listening_tcp_ports(web.pids("web")) == set()
        assert listening_tcp_ports(web.pids("nginx")) == {web.port}

        worker = Stack(data_dir, role="worker", port=free_port())
        with worker:
            assert worker.pids("worker")
            assert worker.pids("nginx") == [] and worker.pids("web") == []
            assert not is_listening(worker.port, timeout=2)
            deadline = time.monotonic() + 30
            while web.healthz()[0] != 200:
                assert time.monotonic() < deadline, (web.healthz(), worker.log_tail())
                time.sleep(0.5)
            assert listening_tcp_ports(worker.pids("worker")) == set()


# --- The real stack: slow clients, bodies, TLS proxy --------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory, ffmpeg_available):
    from tests.conftest import require

    require(ffmpeg_available, "ffmpeg")
    with clean_stack(tmp_path_factory.mktemp("front") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def phone(stack) -> Client:
    return Client(stack.port)


@pytest.fixture(scope="module")
def machine(phone) -> dict:
    return phone.new_machine("Gorgar")


@pytest.fixture(scope="module")
def entry(phone, machine) -> dict:
    status, entry = phone.post_files("/api/log-entries/", {"machine": machine["id"]}, [])
    assert status == 201, entry
    return entry


def timed_healthz(port: int) -> tuple[float, int]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
    except OSError:
        status = 0
    finally:
        conn.close()
    return time.monotonic() - started, status


def test_healthz_answers_within_a_second_while_200_slow_clients_trickle(stack):
    """100 phones trickle their request headers and 100 a form body, a byte every 0.3 s for
    12 s (one loop, 127.0.0.1 only). Each holds an nginx connection, none a gunicorn thread."""
    header = b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    body_head = (
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    selector = selectors.DefaultSelector()
    slow: list[tuple[socket.socket, bytes]] = []
    for i in range(200):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
        sock.setblocking(False)
        first = header if i % 2 == 0 else body_head
        sock.send(first)
        slow.append((sock, b"a" if i % 2 == 0 else b"username=x&"))
        selector.register(sock, selectors.EVENT_READ)
    health: list[tuple[float, int]] = []
    closed_by_server = 0
    try:
        ends = time.monotonic() + 12
        next_probe = time.monotonic()
        while time.monotonic() < ends:
            for sock, piece in slow:
                with contextlib.suppress(OSError):  # closed by nginx: its timeout at work
                    sock.send(piece[:1])
            for key, _ in selector.select(timeout=0):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 408"):
                    closed_by_server += 1
                    selector.unregister(key.fileobj)
            if time.monotonic() >= next_probe:
                health.append(timed_healthz(stack.port))
                next_probe = time.monotonic() + 0.5
            time.sleep(0.3)
    finally:
        for sock, _ in slow:
            sock.close()
    assert len(health) >= 15
    assert all(status == 200 for _, status in health), health
    slowest = max(seconds for seconds, _ in health)
    assert slowest < 1.0, f"/healthz took {slowest:.2f}s with 200 slow clients open"
    # nginx cut the header tricklers off at client_header_timeout (10 s), not a thread later.
    assert closed_by_server >= 90, closed_by_server
    print(f"\n200 slow clients: {len(health)} /healthz probes, slowest {slowest * 1000:.0f} ms; "
          f"{closed_by_server} trickling connections closed by nginx")  # fmt: skip


def send_declared(
    port: int, path: str, length: int, headers: dict, send: int
) -> http.client.HTTPConnection:
    """Open a POST that declares ``length`` bytes of body and send the first ``send`` of them
    (or as many as the server takes); the caller reads the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", path)
    for key, value in {"Content-Length": str(length), **headers}.items():
        conn.putheader(key, value)
    conn.endheaders()
    block = b"\0" * (1024 * 1024)
    conn.sock.settimeout(2)
    sent = 0
    try:
        while sent < send:
            sent += conn.sock.send(block[: send - sent])
    except OSError:  # the server answered and stopped reading: that is the point
        pass
    conn.sock.settimeout(30)
    return conn


def test_an_anonymous_300_mb_body_is_refused_unread_and_nothing_lands_on_disk(
    stack, phone, machine, entry
):
    """A stranger with a self-made csrftoken cookie posts 300 MB to the login page, the
    new-entry page and the upload API: 413 at once, and no byte reaches DATA_DIR/tmp, while a
    maintainer's upload to the same address is buffered there (the check can see it)."""
    stranger = {"Cookie": "csrftoken=" + "a" * 32, "X-CSRFToken": "a" * 32}
    multipart = {"Content-Type": "multipart/form-data; boundary=xyz"}
    slug = machine["name"].lower()
    paths = {
        "/accounts/login/": {"Content-Type": "application/x-www-form-urlencoded"},
        "/admin/login/": {"Content-Type": "application/x-www-form-urlencoded"},
        f"/machines/{slug}/log/new/": multipart,
        "/api/log-entries/": multipart,
        f"/api/log-entries/{entry['id']}/media/": multipart,
    }
    before = bodies_on_disk(stack)
    for path, content_type in paths.items():
        started = time.monotonic()
        conn = send_declared(
            stack.port, path, 300 * 1024**2, {**stranger, **content_type}, 8 * 1024**2
        )
        try:
            assert bodies_on_disk(stack) == before, path  # the connection is still open here
            response = conn.getresponse()
            body = response.read().decode()
        finally:
            conn.close()
        assert response.status == 413, (path, body)
        # Over one file's cap (the media address): nginx says so before asking who it is.
        assert (
            "larger than 200 MB" in body if path.endswith("/media/") else "larger than 1 MB" in body
        )
        if path.startswith("/api/"):
            assert response.getheader("Content-Type") == "application/json"
            assert json.loads(body)["error"]
        assert time.monotonic() - started < 5
    # The control: the same address takes a maintainer's upload, buffered in DATA_DIR/tmp.
    conn = send_declared(
        stack.port, f"/api/log-entries/{entry['id']}/media/", 20 * 1024**2,
        {**phone.headers(), **multipart}, 8 * 1024**2,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while not any(name.startswith("nginx/client_body/") for name in bodies_on_disk(stack)):
            assert time.monotonic() < deadline, bodies_on_disk(stack)
            time.sleep(0.1)
    finally:
        conn.close()
    assert stack.healthz()[0] == 200


def test_a_stranger_without_a_body_gets_the_login_not_too_large(stack, machine, entry):
    """A logged-out maintainer follows a link to the new-entry form, or a phone asks about its
    upload after its session ended: no body at all, so nginx's gate lets the request through
    and Django answers as it would straight (the login page; 401), never "Too large"."""
    slug = machine["name"].lower()
    upload = f"/api/log-entries/{entry['id']}/uploads/{uuid.UUID(int=0)}/"
    for method, path, status in [
        ("GET", f"/machines/{slug}/log/new/", 302),
        ("HEAD", upload, 401),
        ("DELETE", upload, 401),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
        try:
            conn.request(method, path, headers={"Tus-Resumable": "1.0.0"})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        assert response.status == status, (method, path, response.status)
        if status == 302:
            assert response.getheader("Location").startswith("/accounts/login/")


def test_a_maintainers_upload_through_nginx_ends_ready(stack, phone, entry, tmp_path):
    video = clips.android_h264_mp4(tmp_path / "VID_1.mp4", seconds=1).read_bytes()
    status, media = phone.post_files(
        f"/api/log-entries/{entry['id']}/media/", {}, [("file", "VID_1.mp4", video, "video/mp4")]
    )
    assert status == 201, media
    deadline = time.monotonic() + 120
    while media["status"] not in ("ready", "failed"):
        assert time.monotonic() < deadline, (media, stack.log_tail())
        time.sleep(0.5)
        status, media = phone.request("GET", media["url"])
    assert media["status"] == "ready", media
    status, _ = phone.request("GET", media["video_url"], headers={"Range": "bytes=0-99"})
    assert status == 206


def test_the_client_address_nginx_saw_is_the_one_django_throttles(stack):
    """A wrong password through nginx, with a forged X-Forwarded-For and X-Real-IP: the login
    throttle counts the failure against 127.0.0.1, the address nginx saw (HTTP_X_REAL_IP)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    conn.request("GET", "/accounts/login/")
    page = conn.getresponse()
    html = page.read().decode()
    conn.close()
    cookie = page.getheader("Set-Cookie").split(";", 1)[0]
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    conn.request(
        "POST", "/accounts/login/",
        body=f"username=nobody-here&password=wrong&csrfmiddlewaretoken={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
                 "Referer": f"http://127.0.0.1:{stack.port}/accounts/login/",
                 "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"},
    )  # fmt: skip
    assert conn.getresponse().status == 200  # the form again, with the error
    conn.close()
    with sqlite3.connect(stack.data_dir / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT ip_address FROM axes_accessattempt WHERE username = 'nobody-here'"
        ).fetchall()
    assert rows == [("127.0.0.1",)]


def test_behind_a_tls_proxy_no_redirect_loop_and_cookies_are_secure(tmp_path):
    """FORCE_HTTPS with the platform's X-Forwarded-Proto: https kept by nginx: pages answer
    (no redirect to where we already are) and set Secure cookies; plain http is redirected."""
    with Stack(tmp_path / "data", role="web", FORCE_HTTPS="1") as tls:

        def get(path: str, **headers: str) -> http.client.HTTPResponse:
            conn = http.client.HTTPConnection("127.0.0.1", tls.port, timeout=10)
            conn.request("GET", path, headers={"Host": "127.0.0.1", **headers})
            response = conn.getresponse()
            response.read()
            conn.close()
            return response

        behind = get("/accounts/login/", **{"X-Forwarded-Proto": "https"})
        assert behind.status == 200
        cookies = behind.headers.get_all("Set-Cookie")
        assert cookies and all("Secure" in cookie for cookie in cookies), cookies
        assert "max-age" in (behind.getheader("Strict-Transport-Security") or "")
        direct = get("/accounts/login/")
        assert direct.status == 301
        assert direct.getheader("Location") == "https://127.0.0.1/accounts/login/"


# --- nginx alone, in front of a recording server ----------------------------------------------


class Recorder(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Stands where gunicorn stands (the unix socket) and records what nginx passes on."""

    daemon_threads = True

    def __init__(self, path: str):
        self.requests: list[dict] = []
        super().__init__(path, RecordingHandler)


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        if self.path != "/_body_gate":
            self.server.requests.append(seen)
        answer = json.dumps(seen).encode()
        self.send_response(204 if self.path == "/_body_gate" else 200)
        for name, value in (
            ("Tus-Resumable", "1.0.0"), ("Upload-Offset", str(len(body))),
            ("Upload-Expires", "Wed, 02 Dec 2026 10:00:00 GMT"),
            ("Location", "/api/log-entries/1/uploads/abc/"),
            ("Media-Location", "/api/media/9/"), ("Content-Type", "application/json"),
        ):  # fmt: skip
            self.send_header(name, value)
        if self.path == "/_body_gate":
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_POST = do_PATCH = do_HEAD = do_OPTIONS = do_DELETE = handle_one

    def address_string(self) -> str:
        return "nginx"

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def nginx_front(request, tmp_path):
    """nginx as deploy/start runs it (manage.py run_nginx), with the recorder as its upstream.
    The recorder's gate says yes to everything: what is tested here is nginx itself.
    Parametrize indirectly with a dict of environment variables (FORCE_HTTPS, ...)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    socket_path = str(run_dir / "web.sock")
    recorder = Recorder(socket_path)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.prod",
        "SECRET_KEY": "nginx-front-test-" + "x" * 40,
        "DATA_DIR": str(tmp_path / "data"),
        "THE_FLIP_RUN_DIR": str(run_dir),
        "THE_FLIP_WEB_SOCKET": socket_path,
        "PORT": str(port),
        "BIND_HOST": "127.0.0.1",
    }
    for name in ("FORCE_HTTPS", "FORWARDED_ALLOW_IPS", "DATABASE_URL"):
        env.pop(name, None)
    env.update(getattr(request, "param", {}))
    log = (tmp_path / "nginx.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_nginx"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    # Up means answering through to the recorder: a port that accepts is not enough, since
    # run_nginx's `nginx -t` opens the listening socket for a moment before nginx itself runs.
    deadline = time.monotonic() + 20
    while not answers_through(port):
        assert process.poll() is None, (tmp_path / "nginx.log").read_text()
        assert time.monotonic() < deadline, (tmp_path / "nginx.log").read_text()
        time.sleep(0.1)
    recorder.requests.clear()
    try:
        yield port, recorder
    finally:
        process.terminate()
        process.wait(timeout=15)
        recorder.shutdown()
        recorder.server_close()
        log.close()


def answers_through(port: int) -> bool:
    try:
        response, _ = through(port, "GET", "/", timeout=2)
    except (OSError, http.client.HTTPException):
        return False
    return response.status == 200


def through(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30,
    **headers: str,
):  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response, (json.loads(data) if data else None)
    finally:
        conn.close()


def test_nginx_replaces_forwarded_headers_with_what_it_saw(nginx_front):
    """The client address nginx saw reaches Django as X-Real-IP and X-Forwarded-For (a
    client's own X-Forwarded-For is replaced, never trusted); X-Forwarded-Proto is the
    platform's when it sent one, else nginx's own scheme; Host keeps its port."""
    port, _ = nginx_front
    _, seen = through(port, "GET", "/", **{"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"})
    assert seen["headers"]["x-real-ip"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["host"] == f"127.0.0.1:{port}"
    _, seen = through(port, "GET", "/", **{"X-Forwarded-Proto": "https"})
    assert seen["headers"]["x-forwarded-proto"] == "https"


@pytest.mark.parametrize("nginx_front", [{"FORCE_HTTPS": "1"}], indirect=True)
def test_behind_a_platform_proxy_the_address_it_appended_is_the_client(nginx_front):
    """FORCE_HTTPS (a TLS proxy in front): the proxy appends the client it saw to
    X-Forwarded-For; that last entry reaches Django, not whatever the client wrote before it."""
    port, _ = nginx_front
    forwarded = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https"}
    _, seen = through(port, "GET", "/", **forwarded)
    assert seen["headers"]["x-real-ip"] == "203.0.113.7"
    assert seen["headers"]["x-forwarded-for"] == "203.0.113.7"
    assert seen["headers"]["x-forwarded-proto"] == "https"


@pytest.mark.parametrize(
    "nginx_front", [{"FORCE_HTTPS": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1,10.0.0.0/8"}],
    indirect=True,
)  # fmt: skip
def test_with_named_proxies_the_first_untrusted_hop_is_the_client(nginx_front):
    """FORWARDED_ALLOW_IPS lists the proxies (a CDN in front of the platform, say): nginx walks
    X-Forwarded-For from the right past them to the first address it does not trust."""
    port, _ = nginx_front
    _, seen = through(port, "GET", "/", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3"})
    assert seen["headers"]["x-real-ip"] == "203.0.113.7"


def test_nginx_passes_a_tus_chunk_and_its_headers_both_ways_intact(nginx_front):
    """PATCH with a 4 MB application/offset+octet-stream chunk to an upload address, HEAD,
    OPTIONS and DELETE: methods, Tus-*/Upload-* headers and the body pass unchanged, and the
    answer's Tus-Resumable, Upload-Offset, Upload-Expires, Location and Media-Location reach
    the client."""
    port, recorder = nginx_front
    chunk = os.urandom(4 * 1024 * 1024)
    path = "/api/log-entries/1/media/"  # an upload view's address (tus adds its own)
    response, seen = through(
        port, "PATCH", path, body=chunk,
        **{"Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0",
           "Upload-Offset": "0", "Upload-Length": str(len(chunk)),
           "Upload-Metadata": "filename SU1HXzEuTU9W"},
    )  # fmt: skip
    assert response.status == 200, seen
    assert seen["method"] == "PATCH"
    assert seen["length"] == len(chunk)
    assert seen["sha256"] == hashlib.sha256(chunk).hexdigest()
    assert seen["headers"]["content-type"] == "application/offset+octet-stream"
    for name, value in [("tus-resumable", "1.0.0"), ("upload-offset", "0"),
                        ("upload-metadata", "filename SU1HXzEuTU9W")]:  # fmt: skip
        assert seen["headers"][name] == value
    assert response.getheader("Tus-Resumable") == "1.0.0"
    assert response.getheader("Upload-Offset") == str(len(chunk))
    assert response.getheader("Upload-Expires")
    assert response.getheader("Location") == "/api/log-entries/1/uploads/abc/"
    assert response.getheader("Media-Location") == "/api/media/9/"
    for method in ("HEAD", "OPTIONS", "DELETE"):
        response, _ = through(port, method, path, **{"Tus-Resumable": "1.0.0"})
        assert response.status == 200, method
        assert recorder.requests[-1]["method"] == method
        assert response.getheader("Tus-Resumable") == "1.0.0"


def test_nginx_refuses_bodies_over_the_caps_itself(nginx_front):
    """Over the small cap anywhere but an upload address, and over an upload address's own cap
    (one file of 200 MB + framing): 413 from nginx, JSON on /api/, and the upstream never sees
    the request."""
    port, recorder = nginx_front
    two_mb = b"x" * (2 * 1024 * 1024)
    response, body = through(port, "POST", "/api/machines/", body=two_mb)
    assert response.status == 413
    assert "larger than 1 MB" in body["error"]
    conn = send_declared(port, "/api/log-entries/1/media/", 300 * 1024**2, {}, 1024**2)
    try:
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 413
    assert "larger than 200 MB" in answer["error"]
    assert recorder.requests == []
