"""Web latency while the worker transcodes a 4K phone video.

Starts the app as `make run` does (supervisord: gunicorn + consumer, deploy/*.conf) on a
temp DATA_DIR, fills a machine's log with entries, then requests that log page one request
at a time: first while idle, then while a 4K HEVC HLG clip (iPhone-like) is transcoded.
Prints p50/p99 of both and their ratio (target: p99 ratio ≤ 1.5), and writes JSON to
bench/out/web_latency.json.

    .venv/bin/python bench/web_latency.py [--samples 300] [--seconds 6]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import clips  # noqa: E402
from tests.live_stack import Client, Stack  # noqa: E402

OUT = ROOT / "bench" / "out"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_get(client: Client, path: str) -> float:
    started = time.perf_counter()
    status, _ = client.request("GET", path)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return elapsed * 1000


def ffmpeg_niceness() -> list[str]:
    out = subprocess.run(
        ["ps", "-C", "ffmpeg", "-o", "ni=,args="], capture_output=True, text=True
    ).stdout
    return [line.strip()[:60] for line in out.splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="idle requests")
    parser.add_argument("--seconds", type=float, default=6, help="length of the 4K clip")
    parser.add_argument("--gap", type=float, default=0.02, help="pause between requests (s)")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    clip = OUT / f"4k-hevc-hlg-{args.seconds:g}s.mov"
    if not clip.exists():
        print(f"generating {clip.name} (once; kept in bench/out/)…", flush=True)
        clips.iphone_hevc_mov(clip, size="3840x2160", seconds=args.seconds)
    photo = clips.photo_jpeg(OUT / "photo.jpg")

    with tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data, Stack(Path(data)) as app:
        phone = Client(app.port)
        _, machine = phone.request(
            "POST", "/api/machines/", body='{"name": "Twilight Zone"}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        for i in range(20):  # a log with some history and photos
            files = [("media", "p.jpg", photo.read_bytes(), "image/jpeg")] if i % 4 == 0 else []
            status, _ = phone.post_files(
                "/api/log-entries/", {"machine": machine["id"], "text": f"entry {i} " * 20}, files
            )
            assert status == 201
        _, page = phone.request("GET", "/")
        slug_path = next(
            line.split('href="')[1].split('"')[0]
            for line in page.splitlines()
            if 'class="card"' in line
        )
        path = slug_path  # the machine's log page
        for _ in range(20):  # warm up
            timed_get(phone, path)

        idle = []
        for _ in range(args.samples):
            idle.append(timed_get(phone, path))
            time.sleep(args.gap)

        status, entry = phone.post_files(
            "/api/log-entries/", {"machine": machine["id"], "text": "4K video"},
            [("media", clip.name, clip.read_bytes(), "video/quicktime")],
        )  # fmt: skip
        assert status == 201, entry
        media_url = entry["media"][0]["url"]
        state = {"status": "pending"}
        checker = Client(app.port)

        def follow():
            while state["status"] in ("pending", "processing"):
                state["status"] = checker.request("GET", media_url)[1]["status"]
                time.sleep(0.5)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        while state["status"] == "pending":
            time.sleep(0.05)
        niceness = []
        busy = []
        transcode_started = time.monotonic()
        while state["status"] == "processing":
            busy.append(timed_get(phone, path))
            if len(busy) == 20:
                niceness = ffmpeg_niceness()
            time.sleep(args.gap)
        transcode_seconds = time.monotonic() - transcode_started
        follower.join()
        final = state["status"]

    result = {
        "page": "machine log page (20 entries, 5 photos)",
        "idle": {"n": len(idle), "p50_ms": percentile(idle, 50), "p99_ms": percentile(idle, 99),
                 "mean_ms": statistics.mean(idle)},
        "transcoding": {"n": len(busy), "p50_ms": percentile(busy, 50),
                        "p99_ms": percentile(busy, 99), "mean_ms": statistics.mean(busy)},
        "transcode": {"clip": clip.name, "seconds": transcode_seconds, "final_status": final,
                      "ffmpeg_ni": niceness},
    }  # fmt: skip
    result["ratio_p50"] = result["transcoding"]["p50_ms"] / result["idle"]["p50_ms"]
    result["ratio_p99"] = result["transcoding"]["p99_ms"] / result["idle"]["p99_ms"]
    (OUT / "web_latency.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(
        f"\n| phase | requests | p50 | p99 |\n|---|---|---|---|\n"
        f"| idle | {len(idle)} | {result['idle']['p50_ms']:.1f} ms "
        f"| {result['idle']['p99_ms']:.1f} ms |\n"
        f"| 4K transcode running | {len(busy)} | {result['transcoding']['p50_ms']:.1f} ms "
        f"| {result['transcoding']['p99_ms']:.1f} ms |\n"
        f"| ratio | | {result['ratio_p50']:.2f} | {result['ratio_p99']:.2f} |"
    )


if __name__ == "__main__":
    main()
