"""Page latency while 20 slow phones upload: one multipart POST per file vs tus chunks.

Starts the app as `make run` does (supervisord: gunicorn + consumer) with one gunicorn
worker of 16 threads, then fetches a machine's log page one request at a time: first idle,
then while 20 clients on 127.0.0.1, each throttled to ~1 MB/s, upload a file of --mb MB,
first as one multipart POST each, then with tus (PATCH chunks of --chunk-mb MB). Reports page
p50/p99 per phase, their ratio to idle, and how long the longest single upload request held
a web thread. With --nginx (when tests/live_stack.py can put nginx in front) the same phases
run again through nginx. JSON goes to bench/out/slow_uploads.json.

    .venv/bin/python bench/slow_uploads.py [--mb 16] [--chunk-mb 2] [--clients 20] [--nginx]
"""

import argparse
import base64
import http.client
import inspect
import json
import os
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
        "longest_thread_hold_s": max(held) if held else None,
        "longest_upload_request_seen_by_client_s": max(holds) if holds else None,
        "upload_errors": errors,
    }


def run_stack(label: str, args, **stack_options) -> dict:
    env = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "16"}
    with (
        tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data,
        Stack(Path(data), **env, **stack_options) as app,
    ):
        port = getattr(app, "public_port", app.port)  # nginx's port when it is in front
        phone = Client(port)
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
        # Logged in once (a login costs a slow password hash), before anything is measured.
        fetcher, clients = Client(port), [Client(port) for _ in range(args.clients)]
        results = {}
        for mode in ("idle", "multipart", "tus"):
            print(f"[{label}] {mode}…", flush=True)
            results[mode] = measure(app, fetcher, clients, mode, args, entry["id"], page)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mb", type=int, default=16, help="file size per client (MB)")
    parser.add_argument("--rate", type=float, default=1.0, help="MB/s per client")
    parser.add_argument("--chunk-mb", type=int, default=2, help="tus chunk size (MB)")
    parser.add_argument("--idle-seconds", type=float, default=8)
    parser.add_argument("--nginx", action="store_true", help="also run with nginx in front")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    runs = {"gunicorn directly": run_stack("gunicorn", args)}
    if args.nginx:
        if "nginx" not in inspect.signature(Stack).parameters:
            sys.exit("tests/live_stack.Stack cannot put nginx in front yet")
        runs["nginx in front"] = run_stack("nginx", args, nginx=True)

    result = {"settings": vars(args), "runs": runs}
    (OUT / "slow_uploads.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("\n| in front | phase | page requests | p50 | p99 | p99 / idle p99 | longest thread "
          "hold by one upload request |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for label, phases in runs.items():
        idle_p99 = phases["idle"]["p99_ms"]
        for mode, r in phases.items():
            hold = r["longest_thread_hold_s"]
            print(f"| {label} | {mode} | {r['requests']} | {r['p50_ms']:.1f} ms "
                  f"| {r['p99_ms']:.1f} ms | {r['p99_ms'] / idle_p99:.1f} "
                  f"| {'—' if hold is None else f'{hold:.1f} s'} |")  # fmt: skip


if __name__ == "__main__":
    main()
