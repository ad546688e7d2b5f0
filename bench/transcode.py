"""Benchmark: the seed's two literal ffmpeg commands vs. the_flip.media.transcode().

    python bench/transcode.py [--repeat N] [--out DIR]

Generates three clips (10 s 1080p HEVC 10-bit HLG .mov, 10 s 1080p H.264/AAC .mp4
already compatible, 5 s 4K HEVC .mov) once into DIR (default bench/out/), then for
each clip runs the seed and the pipeline N times, alternating, and reports the
median wall time, output size, peak RSS and CPU seconds of the ffmpeg children.
Peak RSS and CPU time (user + system) are measured per run by wait4() on each child
(ru_maxrss, ru_utime + ru_stime), so the pipeline's own preexec/rlimit wrapper and
the seed are measured the same way. CPU seconds barely depend on how busy the
machine is, wall time does: on a shared machine compare both.

    python bench/transcode.py --repeat 5 --only hlg   # one clip (substring of its name)
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
        self.cpu = 0.0

    def reap(self, popen: subprocess.Popen) -> int:
        _, status, usage = os.wait4(popen.pid, 0)
        self.peak_kb = max(self.peak_kb, usage.ru_maxrss)
        self.cpu += usage.ru_utime + usage.ru_stime
        popen.returncode = os.waitstatus_to_exitcode(status)
        return popen.returncode


def run_seed(src: Path, out: Path) -> tuple[float, int, float]:
    meter = RssMeter()
    start = time.monotonic()
    for cmd in seed_commands(src, out):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        if meter.reap(p) != 0:
            raise SystemExit(f"seed failed: {cmd}")
    return time.monotonic() - start, meter.peak_kb, meter.cpu


def run_pipeline(src: Path, out: Path) -> tuple[float, int, float, bool]:
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
    return time.monotonic() - start, meter.peak_kb, meter.cpu, result.copied


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--only", default="", help="run only the clips whose name contains this")
    args = ap.parse_args()
    clips = [name for name in CLIPS if args.only in name]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in clips:
        gen = CLIPS[name]
        path = args.out / name
        if not path.exists():
            print(f"generating {name} ...", flush=True)
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *gen, str(path)], check=True)
    print(f"ffmpeg {tool_versions()['ffmpeg']}, {os.cpu_count()} cores, median of {args.repeat}")
    header = (
        f"{'clip':24} {'who':9} {'wall s':>6} {'ratio':>5} {'CPU s':>5} {'ratio':>5}"
        f" {'MB out':>6} {'RSS MB':>6}"
    )
    print(header)
    for name in clips:
        src = args.out / name
        seed_t, pipe_t, seed_rss, pipe_rss, seed_cpu, pipe_cpu = [], [], [], [], [], []
        seed_size = pipe_size = 0
        copied = False
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as d:
                t, rss, cpu = run_seed(src, Path(d))
                seed_t.append(t)
                seed_rss.append(rss)
                seed_cpu.append(cpu)
                seed_size = (Path(d) / "video.mp4").stat().st_size
            with tempfile.TemporaryDirectory(dir=args.out) as d:
                t, rss, cpu, copied = run_pipeline(src, Path(d))
                pipe_t.append(t)
                pipe_rss.append(rss)
                pipe_cpu.append(cpu)
                pipe_size = (Path(d) / "video.mp4").stat().st_size
        s, p = statistics.median(seed_t), statistics.median(pipe_t)
        sc, pc = statistics.median(seed_cpu), statistics.median(pipe_cpu)
        print(f"{name[:24]:24} {'seed':9} {s:6.2f} {1:5.2f} {sc:5.1f} {1:5.2f} "
              f"{seed_size / 1e6:6.2f} {max(seed_rss) / 1024:6.0f}")  # fmt: skip
        who = "pipe-copy" if copied else "pipeline"
        print(f"{name[:24]:24} {who:9} {p:6.2f} {p / s:5.2f} {pc:5.1f} {pc / sc:5.2f} "
              f"{pipe_size / 1e6:6.2f} {max(pipe_rss) / 1024:6.0f}")  # fmt: skip
        ratios = [b / a for a, b in zip(seed_t, pipe_t, strict=True)]
        print(f"    runs wall: seed {fmt(seed_t)}  pipe {fmt(pipe_t)}  pair ratios {fmt(ratios)}")
        print(f"    runs CPU:  seed {fmt(seed_cpu)}  pipe {fmt(pipe_cpu)}", flush=True)
    shutil.rmtree(args.out / "__pycache__", ignore_errors=True)


def fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
