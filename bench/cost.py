"""Calibration: the plan's cost estimate against the CPU seconds ffmpeg really spends.

    python bench/cost.py [--repeat N] [--out DIR] [--only NAME]

Generates short lavfi clips of every kind the estimate distinguishes (H.264, HEVC 8-bit,
HEVC 10-bit HLG, VP9, AV1, 4K HEVC, 4K 60 fps H.264, and one noisy 1080p H.264 to show how
much detail costs) into DIR (default bench/out/), then per clip:

* decodes it alone (``-threads 1 -f null``): CPU nanoseconds per *source* pixel;
* runs ``the_flip.media.transcode()`` with the default ``Limits()``: CPU seconds of all
  ffmpeg/ffprobe children (``RUSAGE_CHILDREN``, which barely depends on how busy the machine
  is) and the nanoseconds per *output* pixel left after the decode;
* prints the estimate (``plan().cost``) and measured / estimated, which must stay >= 1 on
  low-detail footage for the estimate to be the lower bound the refusal relies on.

The last line is the output pixels per CPU-second of the SDR clips (encode + scaling, decode
subtracted): the measured value for ``TRANSCODE_PIXELS_PER_CPU_SECOND``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from the_flip.media import probe, tool_versions, transcode
from the_flip.media.plan import plan

SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
HD = "testsrc2=size=1920x1080:rate=30"
X265 = ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"]
CLIPS: dict[str, list[str]] = {
    "h264_1080p_3s.ts": ["-f", "lavfi", "-i", HD, *SINE, "-t", "3", "-c:v", "libx264",
                         "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "hevc_1080p_3s.mov": ["-f", "lavfi", "-i", HD, *SINE, "-t", "3", *X265, "-preset", "fast",
                          "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "hevc10_hlg_1080p_3s.mov": ["-f", "lavfi", "-i", HD, *SINE, "-t", "3", *X265,
                                "-preset", "fast", "-pix_fmt", "yuv420p10le",
                                "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
                                "-colorspace", "bt2020nc", "-c:a", "aac"],
    "vp9_1080p_3s.webm": ["-f", "lavfi", "-i", HD, *SINE, "-t", "3", "-c:v", "libvpx-vp9",
                          "-deadline", "realtime", "-cpu-used", "8", "-b:v", "4M",
                          "-c:a", "libopus"],
    "av1_1080p_3s.mkv": ["-f", "lavfi", "-i", HD, *SINE, "-t", "3", "-c:v", "libsvtav1",
                         "-preset", "12", "-svtav1-params", "svt-log-level=0", "-c:a", "libopus"],
    "hevc_4k_2s.mov": ["-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30", *SINE, "-t", "2",
                       *X265, "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "h264_4k60_2s.ts": ["-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=60", *SINE, "-t", "2",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        "-c:a", "aac"],
    "h264_noisy_1080p_3s.ts": ["-f", "lavfi", "-i", f"{HD},noise=alls=12:allf=t", *SINE,
                               "-t", "3", "-c:v", "libx264", "-preset", "fast",
                               "-pix_fmt", "yuv420p", "-c:a", "aac"],
}  # fmt: skip


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(fn) -> float:
    before = children_cpu()
    fn()
    return children_cpu() - before


def decode_only(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path),
         "-map", "0:v:0", "-f", "null", "-"],
        check=True,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--only", default="", help="run only the clips whose name contains this")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [name for name in CLIPS if args.only in name]
    for name in names:
        path = args.out / name
        if not path.exists():
            print(f"generating {name} ...", flush=True)
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *CLIPS[name], "-shortest",
                            str(path)], check=True)  # fmt: skip
    print(f"ffmpeg {tool_versions()['ffmpeg']}, median of {args.repeat} runs (CPU seconds)")
    print(f"{'clip':24} {'decode ns/src px':>16} {'rest ns/out px':>14} {'CPU s':>6}"
          f" {'estimate':>8} {'measured/est':>12}")  # fmt: skip
    sdr_rest = []
    for name in names:
        path = args.out / name
        info = probe(path)
        the_plan = plan(info)
        assert the_plan.cost is not None and info.video is not None
        frames = the_plan.cost.frames
        source_px = info.video.width * info.video.height * frames
        output_px = the_plan.width * the_plan.height * frames
        decode = statistics.median(
            cpu_of(lambda p=path: decode_only(p)) for _ in range(args.repeat)
        )
        total = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as workdir:
                total.append(cpu_of(lambda p=path, w=workdir: transcode(p, Path(w))))
        cpu = statistics.median(total)
        rest = (cpu - decode) / output_px * 1e9
        if not the_plan.tonemap and "noisy" not in name:
            sdr_rest.append(rest)
        estimate = the_plan.cost.cpu_seconds
        runs = "/".join(f"{t:.2f}" for t in total)
        print(f"{name[:24]:24} {decode / source_px * 1e9:16.2f} {rest:14.2f} {cpu:6.2f}"
              f" {estimate:8.2f} {cpu / estimate:12.2f}   runs {runs}", flush=True)  # fmt: skip
    if sdr_rest:
        fastest = min(sdr_rest)
        print(f"SDR encode + scaling: {statistics.median(sdr_rest):.1f} ns per output pixel"
              f" (median), fastest {fastest:.1f} ns = {1e3 / fastest:.1f} M pixels"
              " per CPU-second")  # fmt: skip


if __name__ == "__main__":
    main()
