"""The app as `make run` runs it (deploy/start: nginx in front of gunicorn, and the huey
consumer, under supervisord; deploy/*.conf) against a throwaway DATA_DIR, and a small stdlib
HTTP client that logs in like a phone does.

    with Stack(tmp_path / "data") as stack:            # ROLE=all: nginx + gunicorn + worker
        Client(stack.port).request("GET", "/api/machines/")
    Stack(tmp_path / "data", role="web")                # nginx + gunicorn only
    Stack(tmp_path / "data", role="worker")             # the worker alone: no port to wait on

Used by tests/test_load.py, tests/test_web_front.py and the benchmarks in bench/. Production
settings, its own SQLite database (or DATABASE_URL=... passed as an env keyword): nothing is
shared with pytest's test database.
"""

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERNAME = "loadtester"
PASSWORD = "flippers-and-coils-" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_listening(port: int, timeout: float = 1) -> bool:
    """Whether something accepts connections on 127.0.0.1:port. A socket the kernel wired to
    itself does not count: free ports come from the ephemeral range, so while nothing listens
    the kernel may pick the same port as our source port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            return sock.getsockname() != sock.getpeername()
    except OSError:
        return False


class Stack:
    """deploy/start in ``role`` (all, web, worker) on a free port and a temporary DATA_DIR;
    extra keywords are environment variables (FORCE_HTTPS="1", DATABASE_URL=...)."""

    def __init__(self, data_dir: Path, port: int | None = None, role: str = "all", **env: str):
        self.data_dir = Path(data_dir)
        self.role = role
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # gunicorn's own socket behind nginx (deploy/start), for a test that must bypass nginx.
        self.web_socket = self.data_dir / "run" / "web.sock"
        self.log_path = self.data_dir / "supervisord.log"
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("THE_FLIP_TEST_")},
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "the_flip.settings.prod",
            "DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "ROLE": role,
            "SECRET_KEY": "load-test-secret-" + secrets.token_hex(24),
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "load@example.org",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        for name in ("DEBUG", "DATABASE_URL", "FORCE_HTTPS", "SENTRY_DSN"):
            if name not in env:
                self.env.pop(name, None)
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=check,
            timeout=300, stdout=subprocess.DEVNULL, stderr=None if check else subprocess.DEVNULL,
        )  # fmt: skip

    def start(self, timeout: float = 60) -> "Stack":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("setup_queue", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        # A second stack on the same database (another ROLE) finds the maintainer there.
        self.manage("createsuperuser", "--noinput", check=False)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(ROOT / "deploy" / "start")], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.role == "worker":
                if self.pids("worker"):
                    return self
            else:
                # ROLE=web answers 503 ("the worker has never reported in") until a worker
                # of the same database beats: answering at all is up.
                try:
                    if self.healthz()[0] in ((200, 503) if self.role == "web" else (200,)):
                        return self
                except (OSError, ValueError, http.client.HTTPException):  # not up yet
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the app did not become healthy:\n" + self.log_tail())

    def healthz(self) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def pids(self, program: str) -> list[int]:
        """The gunicorn master and workers ("web"), nginx's master and worker ("nginx") or
        the consumer ("worker"), started by this stack."""
        out = subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
        ).stdout
        rows = [line.split(None, 2) for line in out.splitlines() if len(line.split(None, 2)) == 3]
        children: dict[int, list[tuple[int, str]]] = {}
        args_of: dict[int, str] = {}
        for pid, ppid, args in rows:
            children.setdefault(int(ppid), []).append((int(pid), args))
            args_of[int(pid)] = args
        words = {"web": ("gunicorn",), "nginx": ("nginx",), "worker": ("run_worker", "run_huey")}
        word = words[program]
        # ROLE=worker execs the worker itself: the stack's own process is the consumer.
        root = self.process.pid
        top = [root] if any(w in args_of.get(root, "") for w in word) else []
        top += [pid for pid, args in children.get(root, []) if any(w in args for w in word)]
        found = list(top)
        for pid in top:
            found += [
                child for child, args in children.get(pid, []) if any(w in args for w in word)
            ]
        return found

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def clean_stack(data_dir: Path, **env: str) -> Iterator[Stack]:
    """A running Stack whose log must hold no traceback once it has stopped (a module fixture's
    way of saying "and nothing crashed meanwhile")."""
    with Stack(data_dir, **env) as running:
        yield running
        log = running.log_tail(200_000)
    assert "Traceback" not in log, log[-6000:]


class Client:
    """A logged-in maintainer over plain http.client: session cookie plus CSRF header."""

    def __init__(self, port: int, username: str = USERNAME, password: str = PASSWORD):
        self.port = port
        self.cookies: dict[str, str] = {}
        self._login(username, password)

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def headers(self, **extra: str) -> dict:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {"Cookie": cookie, "X-CSRFToken": self.cookies.get("csrftoken", ""), **extra}

    def _remember(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        """One request on its own connection; returns (status, parsed JSON or text)."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=self.headers(**(headers or {})))
            response = conn.getresponse()
            self._remember(response)
            data = response.read()
            if response.headers.get_content_type() == "application/json":
                return response.status, json.loads(data)
            return response.status, data.decode(errors="replace")
        finally:
            conn.close()

    def _login(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = f"username={username}&password={password}&csrfmiddlewaretoken={token}"
        status, _ = self.request(
            "POST", "/accounts/login/", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Referer": f"http://127.0.0.1:{self.port}/accounts/login/"},
        )  # fmt: skip
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login failed ({status})")

    def new_machine(self, name: str) -> dict:
        """Add a machine the way the API's clients do; its JSON."""
        status, machine = self.request(
            "POST", "/api/machines/", body=json.dumps({"name": name}),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 201, machine
        return machine

    def new_entry(self, machine_id: int, text: str = "", files=()) -> dict:
        """A log entry on that machine (with files as in ``post_files``); its JSON."""
        status, entry = self.post_files(
            "/api/log-entries/", {"machine": machine_id, "text": text}, files
        )
        assert status == 201, entry
        return entry

    def post_files(self, path: str, fields: dict, files: Iterable[tuple[str, str, bytes, str]]):
        """multipart/form-data from memory: files are (field, filename, content, type)."""
        boundary = uuid.uuid4().hex
        parts = b"".join(_field(boundary, k, str(v)) for k, v in fields.items())
        for field, name, content, content_type in files:
            parts += _file_head(boundary, field, name, content_type) + content + b"\r\n"
        parts += f"--{boundary}--\r\n".encode()
        return self.request(
            "POST", path, body=parts,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip


def _field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def _file_head(boundary: str, field: str, filename: str, content_type: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()


def streamed_upload(
    client: Client,
    path: str,
    filename: str,
    size: int,
    content_type: str = "video/mp4",
    declared: int | None = None,
    send_at_most: int | None = None,
    chunk: int = 1024 * 1024,
) -> tuple[int, dict | str, int]:
    """POST one file of ``size`` bytes generated on the fly (never held in memory).

    ``declared`` lies about the length (Content-Length); ``send_at_most`` stops sending early
    and reads the answer. Returns (status, body, bytes of the body actually sent).
    """  # fmt: skip
    boundary = uuid.uuid4().hex
    head = _file_head(boundary, "file", filename, content_type)
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + size + len(tail)
    conn = client.connection(timeout=120)
    conn.putrequest("POST", path)
    for key, value in client.headers(
        **{"Content-Type": f"multipart/form-data; boundary={boundary}",
           "Content-Length": str(declared if declared is not None else total)}
    ).items():  # fmt: skip
        conn.putheader(key, value)
    conn.endheaders()
    sent = 0
    limit = total if send_at_most is None else min(total, send_at_most)
    try:
        for piece in _body(head, size, tail, chunk):
            piece = piece[: limit - sent]
            if not piece:
                break
            conn.send(piece)
            sent += len(piece)
        response = conn.getresponse()
        data = response.read()
        try:
            body = json.loads(data)
        except ValueError:
            body = data.decode(errors="replace")
        return response.status, body, sent
    finally:
        conn.close()


def _body(head: bytes, size: int, tail: bytes, chunk: int) -> Iterator[bytes]:
    yield head
    block = os.urandom(chunk)  # one reusable block: the body is never in memory
    left = size
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk
    yield tail
