"""What nginx costs at container start: start-to-healthy with nginx in front vs gunicorn alone.

The same image both ways: "gunicorn alone" mounts a deploy/start that sets no unix socket
(gunicorn then listens on PORT itself) and a deploy/supervisord.conf without the nginx
program. Each round starts one container of each kind, alternately, on a fresh volume, and
times `docker run` to the first 200 from /healthz. Prints each time and the medians.

    .venv/bin/python bench/nginx_start.py [--image the-flip:test] [--rounds 5]
"""

import argparse
import re
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def without_nginx(folder: Path) -> list[str]:
    """Mount options that take nginx out of the image's start."""
    start = (ROOT / "deploy" / "start").read_text()
    start = start.replace('export THE_FLIP_WEB_SOCKET="$THE_FLIP_RUN_DIR/web.sock"\n', "")
    conf = (ROOT / "deploy" / "supervisord.conf").read_text()
    conf = re.sub(r"^\[program:nginx\].*?(?=^\[)", "", conf, flags=re.S | re.M)
    (folder / "start").write_text(start)
    (folder / "start").chmod(0o755)
    (folder / "supervisord.conf").write_text(conf)
    return [
        "-v", f"{folder / 'start'}:/app/deploy/start:ro",
        "-v", f"{folder / 'supervisord.conf'}:/app/deploy/supervisord.conf:ro",
    ]  # fmt: skip


def start_to_healthy(image: str, mounts: list[str]) -> float:
    name = f"the-flip-bench-{uuid.uuid4().hex[:8]}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    docker("volume", "create", name)
    started = time.monotonic()
    try:
        docker(
            "run", "-d", "--name", name, "--network", "host", "-v", f"{name}:/data", *mounts,
            "-e", f"PORT={port}", "-e", f"SECRET_KEY={secrets.token_urlsafe(50)}",
            "-e", "WEB_CONCURRENCY=1", image,
        )  # fmt: skip
        while time.monotonic() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{name} never became healthy")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", name], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="the-flip:test")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"nginx in front": [], "gunicorn alone": []}
    with tempfile.TemporaryDirectory() as folder:
        mounts = {"nginx in front": [], "gunicorn alone": without_nginx(Path(folder))}
        for _ in range(args.rounds):
            for label, extra in mounts.items():
                times[label].append(start_to_healthy(args.image, extra))
                print(f"{label}: {times[label][-1]:.2f} s", flush=True)
    for label, values in times.items():
        median, low, high = statistics.median(values), min(values), max(values)
        print(f"| {label} | {median:.2f} s | {low:.2f}–{high:.2f} s |")
    ratio = statistics.median(times["nginx in front"]) / statistics.median(times["gunicorn alone"])
    print(f"ratio nginx / alone (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
