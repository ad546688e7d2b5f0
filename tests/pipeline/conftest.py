"""Phone-like clips made with ffmpeg's lavfi sources, once per test session.

Every clip is tiny (1-3 s, <= 640 px) unless the case is about size. ``clip(name)``
makes it on first use and caches it in a session temp dir.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FF = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
X265 = ["-c:v", "libx265", "-x265-params", "log-level=error", "-preset", "ultrafast"]
SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]


def testsrc(size: str = "320x240", rate: int = 30) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]


# SDR testsrc2 turned into what a camera writes: HLG or PQ (SDR white at 203 nits), BT.2020.
TO_HLG = (
    "zscale=tin=709:pin=709:min=709:rin=limited:t=arib-std-b67:p=2020:m=2020_ncl:r=limited,"
    "format=yuv420p10le"
)
TO_PQ = (
    "zscale=tin=709:pin=709:min=709:rin=limited:t=smpte2084:p=2020:m=2020_ncl:r=limited"
    ":npl=203,format=yuv420p10le"
)
HLG_TAGS = ["-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc"]
PQ_TAGS = ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]


def ff(*args: str | Path) -> None:
    subprocess.run([*FF, *map(str, args)], check=True, stdin=subprocess.DEVNULL)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


def video_stream(path: Path) -> dict:
    return next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")


def audio_streams(path: Path) -> list[dict]:
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == "audio"]


def signalstats(path: Path) -> dict[str, float]:
    """Mean YAVG and SATAVG (8-bit scale) over all frames."""
    out = subprocess.run(
        [*FF, "-i", str(path), "-vf", "signalstats,metadata=print:file=-", "-f", "null", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sums: dict[str, list[float]] = {"YAVG": [], "SATAVG": [], "YMAX": []}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        key = key.rsplit(".", 1)[-1]
        if key in sums:
            sums[key].append(float(value))
    scale = 4.0 if int(sums["YMAX"] and max(sums["YMAX"]) > 255) else 1.0
    return {k: sum(v) / len(v) / scale for k, v in sums.items() if v}


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = end - pos
        yield pos, size, kind
        pos += size


def add_dolby_vision_record(src: Path, dst: Path, profile: int = 8, compat_id: int = 4) -> None:
    """Copy an HEVC .mov/.mp4 (moov after mdat) adding the ``dvvC`` box an iPhone writes.

    That configuration record is all ffprobe reads to report Dolby Vision (profile 8.4
    = HLG-compatible base layer); the frames themselves stay plain HEVC HLG.
    """
    data = bytearray(src.read_bytes())
    path = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]
    chain: list[tuple[int, int]] = []  # (offset, size) of ancestors
    start, end = 0, len(data)
    for want in path:
        for pos, size, kind in _boxes(data, start, end):
            if kind == want:
                if want == b"trak" and b"hvc1" not in data[pos : pos + size]:
                    continue
                chain.append((pos, size))
                start, end = pos + 8, pos + size
                break
        else:
            raise AssertionError(f"no {want!r} box")
    stsd_pos, _ = chain[-1]
    entry_pos = stsd_pos + 16  # fullbox header (4) + entry count (4)
    entry_size = struct.unpack(">I", data[entry_pos : entry_pos + 4])[0]
    bits = profile << 9 | 4 << 3 | 1 << 2 | 0 << 1 | 1  # level 4, rpu, no el, bl
    record = bytes([1, 0]) + struct.pack(">H", bits) + bytes([compat_id << 4, 0, 0, 0]) + bytes(16)
    box = struct.pack(">I4s", 8 + len(record), b"dvvC") + record
    insert_at = entry_pos + entry_size
    assert data.find(b"mdat") < chain[0][0], "moov must come after mdat"
    for pos, size in [*chain, (entry_pos, entry_size)]:
        struct.pack_into(">I", data, pos, size + len(box))
    data[insert_at:insert_at] = box
    dst.write_bytes(bytes(data))


def break_first_audio_codec(src: Path, dst: Path) -> None:
    """Make the first audio track undecodable: unknown sample entry, no esds."""
    data = src.read_bytes()
    i = data.find(b"mp4a", data.find(b"moov"))
    j = data.find(b"esds", i)
    data = data[:i] + b"xxxx" + data[i + 4 : j] + b"xsds" + data[j + 4 :]
    dst.write_bytes(data)


RECIPES: dict[str, Callable[[Path, Callable[[str], Path]], None]] = {}


def recipe(name: str):
    def register(fn):
        RECIPES[name] = fn
        return fn

    return register


@recipe("compatible.mp4")
def _(out, clip):
    # What a modern Android phone writes at low res: H.264 High yuv420p + AAC stereo.
    ff(*testsrc(), *SINE, "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
       "-c:a", "aac", "-ac", "2", "-shortest", out)  # fmt: skip


@recipe("sdr_reference.mp4")
def _(out, clip):
    # The SDR picture every HDR clip below was made from (near-lossless).
    ff(*testsrc("640x360"), "-t", "1", "-vf", "format=yuv420p", "-c:v", "libx264",
       "-crf", "5", out)  # fmt: skip


@recipe("iphone_hlg.mov")
def _(out, clip):
    ff(*testsrc("640x360"), *SINE, "-t", "1", "-vf", TO_HLG, *X265, "-crf", "12",
       "-pix_fmt", "yuv420p10le", *HLG_TAGS, "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2",
       "-shortest", out)  # fmt: skip


@recipe("android_pq.mp4")
def _(out, clip):
    ff(*testsrc("640x360"), *SINE, "-t", "1", "-vf", TO_PQ, *X265, "-crf", "12",
       "-pix_fmt", "yuv420p10le", *PQ_TAGS, "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2",
       "-shortest", out)  # fmt: skip


@recipe("iphone_dolby_vision_84.mov")
def _(out, clip):
    add_dolby_vision_record(clip("iphone_hlg.mov"), out, profile=8, compat_id=4)


for _deg in (90, 180, 270):

    @recipe(f"rotated_{_deg}.mov")
    def _(out, clip, deg=_deg):
        ff("-i", clip("compatible.mp4"), "-c", "copy", "-metadata:s:v:0", f"rotate={deg}", out)


@recipe("landscape_4k_hevc.mov")
def _(out, clip):
    ff(*testsrc("3840x2160", 10), "-t", "1", *X265, "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
       out)  # fmt: skip


@recipe("portrait_4k_hevc.mov")
def _(out, clip):
    ff("-i", clip("landscape_4k_hevc.mov"), "-c", "copy", "-metadata:s:v:0", "rotate=90", out)


@recipe("odd_2560x1179.mp4")
def _(out, clip):
    # 4:2:0 cannot have odd sizes; 4:4:4 can (and is a case of its own).
    ff(*testsrc("2560x1180", 10), "-t", "1", "-vf", "format=yuv444p,crop=2560:1179:0:0",
       "-c:v", "libx264", "-preset", "ultrafast",
       "-pix_fmt", "yuv444p", out)  # fmt: skip


@recipe("odd_1081x1921.mp4")
def _(out, clip):
    ff(*testsrc("1082x1922", 10), "-t", "1", "-vf", "format=yuv444p,crop=1081:1921:0:0",
       "-c:v", "libx264", "-preset", "ultrafast",
       "-pix_fmt", "yuv444p", out)  # fmt: skip


@recipe("h264_422_10bit.mov")
def _(out, clip):
    ff(*testsrc(), "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv422p10le", out)


@recipe("h264_444.mp4")
def _(out, clip):
    ff(*testsrc(), "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv444p", out)


@recipe("iphone_extra_tracks.mov")
def _(out, clip):
    # Two video streams, two audio tracks, a timecode (tmcd) track and a subtitle.
    ff(*testsrc(), *testsrc("160x120"), *SINE, "-f", "lavfi", "-i", "sine=frequency=880",
       "-t", "1", "-map", "0", "-map", "1", "-map", "2", "-map", "3",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-timecode", "01:00:00:00",
       out)  # fmt: skip


@recipe("broken_first_audio.mov")
def _(out, clip):
    tmp = out.with_suffix(".tmp.mov")
    ff(*testsrc(), *SINE, "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000", "-t", "1",
       "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-c:a", "aac", "-ac", "2",
       tmp)  # fmt: skip
    break_first_audio_codec(tmp, out)


@recipe("only_broken_audio.mov")
def _(out, clip):
    tmp = out.with_suffix(".tmp.mov")
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "libx264", "-c:a", "aac", tmp)
    break_first_audio_codec(tmp, out)


@recipe("no_audio.mov")
def _(out, clip):
    ff(*testsrc(), "-t", "1", "-c:v", "mpeg4", out)


@recipe("surround_51.mov")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "libx264", "-c:a", "aac", "-ac", "6", "-shortest",
       out)  # fmt: skip


@recipe("surround_71.mkv")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "libx264", "-c:a", "pcm_s16le", "-ac", "8",
       "-shortest", out)  # fmt: skip


@recipe("vfr.mp4")
def _(out, clip):
    # Phone-style variable frame rate: a third of the frames missing in bursts.
    ff(*testsrc(), *SINE, "-t", "3", "-vf", "select='not(between(mod(n,30),10,19))'",
       "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0",
       "-c:a", "aac", "-ac", "2", "-shortest", out)  # fmt: skip


@recipe("vp9_opus.webm")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "libvpx-vp9", "-deadline", "realtime",
       "-cpu-used", "8", "-c:a", "libopus", "-shortest", out)  # fmt: skip


@recipe("mjpeg.avi")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "mjpeg", "-c:a", "pcm_s16le", "-shortest", out)


@recipe("old_phone.3gp")
def _(out, clip):
    ff(*testsrc("176x144", 15), "-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "1",
       "-c:v", "mpeg4", "-c:a", "aac", "-ac", "1", "-shortest", out)  # fmt: skip


@recipe("very_short.mp4")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "0.3", "-c:v", "libx264", "-c:a", "aac", "-shortest", out)


@recipe("high_bitrate.mp4")
def _(out, clip):
    ff(*testsrc(), "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-qp", "0",
       "-profile:v", "high444", out)  # fmt: skip


@recipe("pcm_audio.mov")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
       "-shortest", out)  # fmt: skip


@recipe("no_faststart.mp4")
def _(out, clip):
    ff(*testsrc(), *SINE, "-t", "2", "-c:v", "libx264", "-c:a", "aac", "-shortest", out)


@recipe("sixteen_minutes.mp4")
def _(out, clip):
    ff(*testsrc("32x32", 1), "-t", "960", "-c:v", "libx264", "-preset", "ultrafast", out)


@recipe("slow_to_convert.mp4")
def _(out, clip):
    # Enough work for several seconds of ffmpeg: used for progress, cancel and timeout.
    # (20 s was ~2 s of work once x264 got 3 threads: too close for the heartbeat test.)
    ff(*testsrc("640x360", 30), "-t", "40", "-c:v", "libx264", "-preset", "ultrafast",
       "-pix_fmt", "yuv444p", out)  # fmt: skip


@recipe("audio_only.mov")
def _(out, clip):
    ff(*SINE, "-t", "1", "-c:a", "aac", out)


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Callable[[str], Path]:
    folder = tmp_path_factory.mktemp("clips")

    def make(name: str) -> Path:
        out = folder / name
        if not out.exists():
            tmp = folder / f"tmp-{name}"
            RECIPES[name](tmp, make)
            os.replace(tmp, out)
        return out

    return make


@pytest.fixture
def workdir(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d
