"""The small-machine scenario (tests/small_machine.py) at several container sizes, side by side.

Each size gets a fresh container and volume from the same image and the same media: a 4K HLG
and a 4K60 clip, a 200 MP JPEG and a 50 MP PNG while the first transcodes, a 60 MB upload
streaming in at 6 MB/s, the log entry page fetched every 100 ms. Prints a Markdown table for
docs/benchmarks.md and writes bench/out/small_machine.json.

    bash docker/build-local.sh the-flip:small
    .venv/bin/python bench/small_machine.py --image the-flip:small [--sizes 1:1g,2:2g] [--seconds 2]

A size may carry settings for that run: ``1:1g:TRANSCODE_LARGE_LOOKAHEAD=20``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# tests/test_container.py (the Docker helpers) imports the test conftest, which needs Django.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "the_flip.settings.test")
django.setup()

from tests.small_machine import Report, make_media, run_scenario  # noqa: E402

OUT = ROOT / "bench" / "out"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="the-flip:small")
    parser.add_argument("--sizes", default="1:1g,2:2g")
    parser.add_argument("--seconds", type=float, default=2)
    args = parser.parse_args()
    media = make_media(OUT / "small_machine", args.seconds)
    reports: list[Report] = []
    for size in args.sizes.split(","):
        cpus, memory, *settings = size.split(":")
        extra_env = dict(setting.split("=", 1) for setting in settings)
        report = run_scenario(args.image, media, cpus=cpus, memory=memory, extra_env=extra_env)
        print("\n".join(report.lines()), flush=True)
        reports.append(report)
    OUT.mkdir(exist_ok=True)
    (OUT / "small_machine.json").write_text(json.dumps([asdict(r) for r in reports], indent=2))
    p = Report.percentile

    def title(r: Report) -> str:
        extra = " ".join(f"{k}={v}" for k, v in r.extra_env.items())
        return f"{r.cpus} CPU / {r.memory.upper()}B" + (f", {extra}" if extra else "")

    header = "| | " + " | ".join(title(r) for r in reports) + " |"
    print("\n" + header)
    print("|---|" + "---:|" * len(reports))

    def ok(r: Report) -> str:
        accepted = set(r.photo_status.values()) == {201} and r.streamed_status == 201
        return "yes" if set(r.video_status.values()) == {"ready"} and accepted else "no"

    def latency(values: list[float]) -> str:
        return f"{p(values, 50):.0f} / {p(values, 99):.0f} ms"

    rows = {
        "gunicorn": [r.web_sizing.split(": ")[-1].split(",")[0] for r in reports],
        "4K HLG HEVC, processing → ready": [f"{r.transcode_seconds['hlg']:.1f} s" for r in reports],
        "4K 60 fps, processing → ready": [f"{r.transcode_seconds['4k60']:.1f} s" for r in reports],
        "busy phase: wall / container CPU": [
            f"{r.busy_seconds:.0f} s / {r.busy_cpu_seconds:.0f} CPU-s" for r in reports
        ],
        "both videos ready, photos and upload accepted": [ok(r) for r in reports],
        "page p50 / p99, idle": [latency(r.page_idle_ms) for r in reports],
        "page p50 / p99, busy": [latency(r.page_busy_ms) for r in reports],
        "pages busy / failed": [f"{len(r.page_busy_ms)} / {len(r.pages_failed)}" for r in reports],
        "anonymous memory, idle": [f"{r.idle_anon_mb:.0f} MB" for r in reports],
        "peak anonymous memory": [f"**{r.peak_anon_mb:.0f} MB**" for r in reports],
        "cgroup peak incl. page cache": [f"{r.peak_with_cache_mb:.0f} MB" for r in reports],
        "OOM kills": [str(r.oom_kills + int(r.oom_killed)) for r in reports],
    }  # fmt: skip
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
