"""Benchmark: the seed's two literal ffmpeg commands vs. the_flip.media.transcode().

    python bench/transcode.py [--repeat N] [--out DIR]

Generates three clips (10 s 1080p HEVC 10-bit HLG .mov, 10 s 1080p H.264/AAC .mp4
already compatible, 5 s 4K HEVC .mov) once into DIR (default bench/out/), then for
each clip runs the seed and the pipeline N times, alternating, and reports the
median wall time, output size and peak RSS of the ffmpeg children. Peak RSS is
measured per run by wait4() on the child (ru_maxrss), so the pipeline's own
preexec/rlimit wrapper and the seed are measured the same way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from the_flip.media import proc, tool_versions, transcode

TO_HLG = (
    "zscale=tin=709:pin=709:min=709:rin=limited:t=arib-std-b67:p=2020:m=2020_ncl:r=limited,"
    "format=yuv420p10le"
)
CLIPS = {
    "hevc_hlg_1080p_10s.mov": [
        "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
        "-vf", TO_HLG, "-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error",
        "-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
        "-colorspace", "bt2020nc", "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2", "-shortest",
    ],
    "h264_aac_1080p_10s.mp4": [
        "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
        "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
        "-shortest",
    ],
    "hevc_4k_5s.mov": [
        "-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "5",
        "-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error",
        "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2", "-shortest",
    ],
}  # fmt: skip

SEED_VF = (
    "scale='min(2400,iw)':'min(2400,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2"
)


def seed_commands(src: Path, out: Path) -> list[list[str]]:
    return [
        ["ffmpeg", "-y", "-nostdin", "-v", "error", "-i", str(src), "-c:v", "libx264",
         "-profile:v", "main", "-pix_fmt", "yuv420p", "-crf", "23", "-preset", "medium",
         "-vf", SEED_VF, "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
         str(out / "video.mp4")],
        ["ffmpeg", "-y", "-nostdin", "-v", "error", "-i", str(src), "-vf", "thumbnail,scale=320:-2",
         "-frames:v", "1", str(out / "poster.jpg")],
    ]  # fmt: skip


class RssMeter:
    """Wraps subprocess.Popen.wait so every child is reaped with os.wait4 (gives ru_maxrss)."""

    def __init__(self):
        self.peak_kb = 0

    def reap(self, popen: subprocess.Popen) -> int:
        _, status, usage = os.wait4(popen.pid, 0)
        self.peak_kb = max(self.peak_kb, usage.ru_maxrss)
        popen.returncode = os.waitstatus_to_exitcode(status)
        return popen.returncode


def run_seed(src: Path, out: Path) -> tuple[float, int]:
    meter = RssMeter()
    start = time.monotonic()
    for cmd in seed_commands(src, out):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        if meter.reap(p) != 0:
            raise SystemExit(f"seed failed: {cmd}")
    return time.monotonic() - start, meter.peak_kb


def run_pipeline(src: Path, out: Path) -> tuple[float, int, bool]:
    meter = RssMeter()
    real_popen = subprocess.Popen

    class MeteredPopen(real_popen):  # reaps via wait4 inside proc.run's wait loop
        def wait(self, timeout=None):
            if self.returncode is None:
                if timeout is not None:
                    # poll without reaping, then reap with wait4 once it exited
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline:
                        if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                            break
                        time.sleep(0.01)
                    else:
                        raise subprocess.TimeoutExpired(self.args, timeout)
                meter.reap(self)
            return self.returncode

    start = time.monotonic()
    with mock.patch.object(proc.subprocess, "Popen", MeteredPopen):
        result = transcode(src, out)
    return time.monotonic() - start, meter.peak_kb, result.copied


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, gen in CLIPS.items():
        path = args.out / name
        if not path.exists():
            print(f"generating {name} ...", flush=True)
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *gen, str(path)], check=True)
    print(f"ffmpeg {tool_versions()['ffmpeg']}, {os.cpu_count()} cores, median of {args.repeat}")
    header = f"{'clip':26} {'who':9} {'wall s':>7} {'ratio':>6} {'MB out':>7} {'RSS MB':>7}"
    print(header)
    for name in CLIPS:
        src = args.out / name
        seed_t, pipe_t, seed_rss, pipe_rss = [], [], [], []
        seed_size = pipe_size = 0
        copied = False
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as d:
                t, rss = run_seed(src, Path(d))
                seed_t.append(t)
                seed_rss.append(rss)
                seed_size = (Path(d) / "video.mp4").stat().st_size
            with tempfile.TemporaryDirectory(dir=args.out) as d:
                t, rss, copied = run_pipeline(src, Path(d))
                pipe_t.append(t)
                pipe_rss.append(rss)
                pipe_size = (Path(d) / "video.mp4").stat().st_size
        s, p = statistics.median(seed_t), statistics.median(pipe_t)
        print(f"{name:26} {'seed':9} {s:7.2f} {1:6.2f} {seed_size / 1e6:7.2f} "
              f"{max(seed_rss) / 1024:7.0f}")  # fmt: skip
        who = "pipe-copy" if copied else "pipeline"
        print(f"{name:26} {who:9} {p:7.2f} {p / s:6.2f} {pipe_size / 1e6:7.2f} "
              f"{max(pipe_rss) / 1024:7.0f}   runs: seed {fmt(seed_t)} pipe {fmt(pipe_t)}",
              flush=True)  # fmt: skip
    shutil.rmtree(args.out / "__pycache__", ignore_errors=True)


def fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
