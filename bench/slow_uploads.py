"""Page latency while 20 slow phones upload: one multipart POST per file vs tus chunks,
straight to gunicorn and through nginx, in one run.

Starts the app as `make run` does (deploy/start: nginx in front of gunicorn, and the worker)
with one gunicorn worker of 16 threads, then fetches a machine's log page one request at a
time: first idle, then while 20 clients on 127.0.0.1, each throttled to ~1 MB/s, upload a file
of --mb MB, first as one multipart POST each, then with tus (PATCH chunks of --chunk-mb MB).
All of it twice: talking to gunicorn's own socket (as without nginx), then to nginx's port.
Reports page p50/p99 per phase, the ratio to idle, and the longest time one upload request
held a web thread (gunicorn's own request time, from its access log). JSON goes to
bench/out/slow_uploads.json.

    .venv/bin/python bench/slow_uploads.py [--mb 16] [--chunk-mb 4] [--clients 20]
"""

import argparse
import base64
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_stack import Client, Stack  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1024 * 1024
PIECE = 64 * 1024


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over gunicorn's unix socket (what nginx talks to), for the "no nginx" phases."""

    def __init__(self, path: Path, timeout: float = 60):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DirectClient(Client):
    """A logged-in maintainer talking to gunicorn itself, bypassing nginx."""

    def __init__(self, socket_path: Path, **kwargs):
        self.socket_path = socket_path
        super().__init__(0, **kwargs)

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        return UnixHTTPConnection(self.socket_path, timeout=timeout)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Throttle:
    """Paces one client's sending to ``rate`` bytes per second (a phone on weak Wi-Fi)."""

    def __init__(self, rate: float):
        self.rate, self.sent, self.started = rate, 0, time.monotonic()

    def send(self, conn: http.client.HTTPConnection, data: bytes) -> None:
        for start in range(0, len(data), PIECE):
            piece = data[start : start + PIECE]
            conn.send(piece)
            self.sent += len(piece)
            ahead = self.sent / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)


def multipart_upload(client: Client, entry_id: int, content: bytes, rate: float) -> list[float]:
    """One POST with the whole file; returns the request's duration (seconds)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="VID.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    conn = client.connection(timeout=600)
    started = time.monotonic()
    conn.putrequest("POST", f"/api/log-entries/{entry_id}/media/")
    headers = client.headers(
        **{"Content-Type": f"multipart/form-data; boundary={boundary}",
           "Content-Length": str(len(body))}
    )  # fmt: skip
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    Throttle(rate).send(conn, body)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 201, response.status
    return [time.monotonic() - started]


def tus_upload(
    client: Client, entry_id: int, content: bytes, rate: float, chunk: int
) -> list[float]:
    """Create, then PATCH chunk by chunk at the same pace; returns each request's duration."""
    tus = {"Tus-Resumable": "1.0.0"}
    conn = client.connection(timeout=600)
    name = base64.b64encode(b"VID.mp4").decode()
    conn.request(
        "POST", f"/api/log-entries/{entry_id}/uploads/",
        headers=client.headers(**tus, **{"Upload-Length": str(len(content)),
                                         "Upload-Metadata": f"filename {name}"}),
    )  # fmt: skip
    created = conn.getresponse()
    created.read()
    assert created.status == 201, created.status
    location = created.headers["Location"]
    durations, throttle = [], Throttle(rate)
    for offset in range(0, len(content), chunk):
        piece = content[offset : offset + chunk]
        started = time.monotonic()
        conn.putrequest("PATCH", location)
        headers = client.headers(
            **tus, **{"Upload-Offset": str(offset), "Content-Length": str(len(piece)),
                      "Content-Type": "application/offset+octet-stream"}
        )  # fmt: skip
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        throttle.send(conn, piece)
        response = conn.getresponse()
        response.read()
        assert response.status == 204, response.status
        durations.append(time.monotonic() - started)
    conn.close()
    return durations


def thread_holds(log: str, mode: str) -> list[float]:
    """How long gunicorn spent on each upload request (seconds), from its access log's
    request time: the time one web thread was held, whatever the client measured."""
    marker = '"PATCH ' if mode == "tus" else "/media/ HTTP"
    return [
        int(line.rsplit(" ", 1)[1].removesuffix("ms")) / 1000
        for line in log.splitlines()
        if marker in line and line.rstrip().endswith("ms")
    ]


def measure(
    app: Stack, fetcher: Client, clients: list[Client], mode: str, args, entry_id: int, page: str
) -> dict:
    """Page latency while each client uploads (mode "multipart"/"tus"), or idle."""
    log_start = len(app.log_tail(10**9))
    for _ in range(10):
        fetcher.request("GET", page)
    latencies, holds, errors = [], [], []
    content = os.urandom(args.mb * MB)
    uploaders = []
    if mode != "idle":

        def run(client: Client) -> None:
            try:
                if mode == "multipart":
                    holds.extend(multipart_upload(client, entry_id, content, args.rate * MB))
                else:
                    holds.extend(
                        tus_upload(client, entry_id, content, args.rate * MB, args.chunk_mb * MB)
                    )
            except Exception as failure:  # reported, not hidden
                errors.append(repr(failure))

        uploaders = [threading.Thread(target=run, args=(c,)) for c in clients]
        for thread in uploaders:
            thread.start()
        time.sleep(1)  # let every upload get going
    deadline = time.monotonic() + (args.idle_seconds if mode == "idle" else 3600)
    while time.monotonic() < deadline:
        if mode != "idle" and not any(t.is_alive() for t in uploaders):
            break
        started = time.perf_counter()
        status, _ = fetcher.request("GET", page)
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
        time.sleep(0.05)
    for thread in uploaders:
        thread.join()
    time.sleep(1)  # the access log's last lines
    held = thread_holds(app.log_tail(10**9)[log_start:], mode) if mode != "idle" else []
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "upload_requests": len(held),
        "median_thread_hold_s": percentile(held, 50) if held else None,
        "longest_thread_hold_s": max(held) if held else None,
        "longest_upload_request_seen_by_client_s": max(holds) if holds else None,
        "upload_errors": errors,
    }


def run_stack(args) -> dict:
    # gunicorn keeps no access log behind nginx; this run wants its request times.
    env = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "16",
           "GUNICORN_CMD_ARGS": "--access-logfile -"}  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data,
        Stack(Path(data), **env) as app,
    ):
        phone = Client(app.port)
        _, machine = phone.request(
            "POST", "/api/machines/", body='{"name": "Medieval Madness"}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        for i in range(20):
            phone.post_files(
                "/api/log-entries/", {"machine": machine["id"], "text": f"entry {i} " * 20}, []
            )
        _, entry = phone.post_files("/api/log-entries/", {"machine": machine["id"]}, [])
        _, listing = phone.request("GET", "/")
        page = next(
            line.split('href="')[1].split('"')[0]
            for line in listing.splitlines()
            if 'class="card"' in line
        )
        fronts = {
            "gunicorn directly": lambda: DirectClient(app.web_socket),
            "nginx in front": lambda: Client(app.port),
        }
        runs = {}
        for label, make_client in fronts.items():
            # Logged in once (a login costs a slow password hash), before anything is measured.
            fetcher, clients = make_client(), [make_client() for _ in range(args.clients)]
            runs[label] = {}
            for mode in ("idle", "multipart", "tus"):
                print(f"[{label}] {mode}…", flush=True)
                runs[label][mode] = measure(app, fetcher, clients, mode, args, entry["id"], page)
        return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mb", type=int, default=16, help="file size per client (MB)")
    parser.add_argument("--rate", type=float, default=1.0, help="MB/s per client")
    parser.add_argument("--chunk-mb", type=int, default=4, help="tus chunk size (MB)")
    parser.add_argument("--idle-seconds", type=float, default=8)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    runs = run_stack(args)

    result = {"settings": vars(args), "load_average": os.getloadavg(), "runs": runs}
    (OUT / "slow_uploads.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("\n| in front | phase | page requests | page p50 | page p99 | p99 / idle p99 | upload "
          "requests | thread held per upload request: median, longest |\n"
          "|---|---|---|---|---|---|---|---|")  # fmt: skip
    for label, phases in runs.items():
        idle_p99 = phases["idle"]["p99_ms"]
        for mode, r in phases.items():
            hold = r["longest_thread_hold_s"]
            held = "—" if hold is None else f"{r['median_thread_hold_s']:.2f} s, {hold:.1f} s"
            print(f"| {label} | {mode} | {r['requests']} | {r['p50_ms']:.1f} ms "
                  f"| {r['p99_ms']:.1f} ms | {r['p99_ms'] / idle_p99:.1f} "
                  f"| {r['upload_requests'] or '—'} | {held} |")  # fmt: skip


if __name__ == "__main__":
    main()
