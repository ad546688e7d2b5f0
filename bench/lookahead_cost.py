"""What a shorter x264 lookahead costs on a 4K phone clip at one CPU: size, SSIM, memory, time.

The pipeline encodes outputs above 1080p with ``rc-lookahead`` = ``Limits.large_rc_lookahead``
(20; the_flip.sizing lowers it on a ~1 GB machine). For each value this runs
``the_flip.media.transcode()`` with ``Limits(cpus=1, ...)`` on the same clips, then compares
each MP4 with a lossless rendering of the same filter graph (``-qp 0``): SSIM (Y and all),
output size, CPU seconds and the ffmpeg child's peak RSS (wait4 ``ru_maxrss``).

    .venv/bin/python bench/lookahead_cost.py [--values 20,10] [--seconds 3]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.clips import ffmpeg, iphone_hevc_mov  # noqa: E402
from the_flip.media import Limits, plan, probe, transcode  # noqa: E402

OUT = ROOT / "bench" / "out"


def phone_4k60(path: Path, seconds: float) -> Path:
    """4K 60 fps H.264 + AAC .mp4, like an Android phone's 4K60 mode."""
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=60",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


def ssim(encoded: Path, reference: Path) -> tuple[float, float]:
    err = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(encoded), "-i", str(reference),
         "-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    found = re.search(r"SSIM Y:([\d.]+).*All:([\d.]+)", err)
    assert found, err[-500:]
    return float(found.group(1)), float(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", default="20,10")
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    values = [int(v) for v in args.values.split(",")]
    OUT.mkdir(exist_ok=True)
    clips = {
        "4K HLG 10-bit HEVC .mov": OUT / f"la_hlg_{args.seconds:g}s.mov",
        "4K 60 fps H.264 .mp4": OUT / f"la_4k60_{args.seconds:g}s.mp4",
    }
    for name, path in clips.items():
        if not path.exists():
            if "HLG" in name:
                iphone_hevc_mov(path, size="3840x2160", seconds=args.seconds)
            else:
                phone_4k60(path, args.seconds)
    print("| clip | rc-lookahead | output KB | SSIM Y | SSIM all | CPU s | ffmpeg peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, clip in clips.items():
        the_plan = plan(probe(clip), limits=Limits(cpus=1))
        with tempfile.TemporaryDirectory(dir=OUT) as scratch:
            reference = Path(scratch) / "reference.mkv"
            ffmpeg("-i", str(clip), "-vf", the_plan.video_filter, "-an", "-c:v", "libx264",
                   "-qp", "0", "-preset", "ultrafast", str(reference))  # fmt: skip
            for value in values:
                work = Path(scratch) / f"la{value}"
                work.mkdir()
                # A fresh process per run, so RUSAGE_CHILDREN is this run's ffmpeg alone.
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(clip), str(work), str(value)],
                    capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                peak_mb, cpu_s = int(out[0]), float(out[1])
                video = work / "video.mp4"
                y, everything = ssim(video, reference)
                print(f"| {name} | {value} | {video.stat().st_size // 1024} | {y:.5f} | "
                      f"{everything:.5f} | {cpu_s:.1f} | {peak_mb} |", flush=True)  # fmt: skip


def one(clip: str, work: str, value: str) -> None:
    transcode(Path(clip), Path(work), limits=Limits(cpus=1, large_rc_lookahead=int(value)))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(usage.ru_maxrss // 1024, round(usage.ru_utime + usage.ru_stime, 1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(*sys.argv[2:5])
    else:
        main()
