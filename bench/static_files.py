"""Static files behind nginx: served by whitenoise in gunicorn, or worth an nginx location?

Starts the app as `make run` does (deploy/start: nginx, gunicorn, worker) on a temp DATA_DIR and
fetches the site's stylesheet and /healthz (the baseline: one small Django view with two
queries) --n times each over one keep-alive connection. Prints median and p99 in ms and the
stylesheet's Cache-Control.

    .venv/bin/python bench/static_files.py [--n 300]
"""

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_stack import Stack  # noqa: E402


def timed(port: int, path: str, n: int) -> tuple[float, float, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(n * 0.99) - 1], response.getheader("Cache-Control")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data, Stack(Path(data)) as app:
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        conn.request("GET", "/accounts/login/")
        page = conn.getresponse().read().decode()
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
        for label, path in (("stylesheet (whitenoise)", stylesheet), ("/healthz", "/healthz")):
            median, p99, cache = timed(app.port, path, args.n)
            print(f"| {label} | {median:.1f} ms | {p99:.1f} ms | {cache} |")


if __name__ == "__main__":
    main()
