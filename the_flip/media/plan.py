"""Step 2: decide, from the probe alone, what ffmpeg must do (a pure function).

``plan()`` refuses inputs outside ``Limits`` and otherwise returns a ``Plan`` whose
``commands()`` gives the exact ffmpeg argument lists. Nothing here runs a process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import tonemap
from .errors import Code, MediaError
from .probe import VIDEO_CODECS, MediaInfo, VideoStream, ffprobe_input
from .spec import Limits, Target

# --- The remux ("copy") rule ---------------------------------------------------------
COPY_CONTAINERS = frozenset({"mov", "matroska"})
COPY_PROFILES = frozenset({"Baseline", "Constrained Baseline", "Main", "High"})
COPY_MAX_BITS_PER_PIXEL_SECOND = 10.0  # 10 Mbit/s per megapixel (1080p: ~20.7 Mbit/s)
COPY_AUDIO = frozenset({"aac"})

THUMBNAIL_FRAMES = 100  # frames the `thumbnail` filter compares (its default)

# --- Threads and memory --------------------------------------------------------------
# Peak memory of the ffmpeg child is dominated by frames in flight. A frame larger than
# 1080p is "large" (a 4K phone video, encoded at 2400x1350):
# * the decoder runs one thread: each frame thread keeps its own set of reference
#   frames, 12 MB each for 8-bit 4K (25 MB for 10-bit);
# * x264 runs at most 2 frame threads (each holds ~36 MB at 2400x1350) with
#   ``sync-lookahead=0`` and ``rc-lookahead`` = ``Limits.large_rc_lookahead`` (20)
#   instead of preset medium's 40: every lookahead frame costs ~10 MB at 2400x1350 (the
#   picture plus four half-size planes), so medium's 40 frames alone need ~420 MB. 20 is
#   preset "faster"'s value; crf, preset and profile are unchanged. Measured on a 5 s 4K
#   HEVC clip: 835 MB -> 562 MB. On a machine of about 1 GB settings pass 10 (the_flip/
#   sizing.py; cost measured in docs/benchmarks.md, "Small machine").
LARGE_FRAME_PIXELS = 1920 * 1088
LARGE_X264_THREADS = 2

# --- Cost: can it finish within the timeout on this machine? -------------------------
# Work is counted in "encoded pixels": every output pixel of every frame costs 1 (x264
# preset medium plus the scaling; Limits.pixels_per_cpu_second says how many this
# machine does per CPU-second). Decoding costs a fraction of that per *source* pixel,
# and the HDR tone map (zscale + lutrgb + swscale, at the output size) adds TONEMAP_COST
# per output pixel. Factors measured with bench/cost.py on lavfi footage
# (docs/benchmarks.md): 1080p decode 3.2-4.9 ns per pixel against 31-40 ns for the rest;
# 10-bit HEVC decodes within 5 % of 8-bit. Detailed, noisy footage costs up to ~5x more
# (x264 works harder), so the estimate is a *lower bound*: only what cannot finish even in
# the cheap case is refused, and the wall-clock timeout still stops the rest.
DECODE_COST = {"h264": 0.06, "hevc": 0.15, "vp9": 0.1, "av1": 0.12}
OTHER_DECODE_COST = 0.15  # mpeg4, mjpeg, prores, ...: intra-heavy, cheap per pixel
TONEMAP_COST = 0.8
COPY_COST = 0.01  # a remux reads the packets; the poster decodes key frames only
FALLBACK_FPS = 30.0  # a stream that states no frame rate


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Threads:
    decoder: int
    filters: int
    x264: int
    x264_params: str


def thread_counts(limits: Limits, source_pixels: int, output_pixels: int) -> Threads:
    """Threads for the decoder, the filter graph and x264, and x264's memory options.

    ``limits.threads`` is a hard cap for all three. Without it (None) the decoder gets
    one thread per CPU (``limits.cpus``, which settings take from the cgroup CPU quota, or
    this process's affinity mask) and x264 its own default, 1.5 x the CPUs (3 on 2 cores:
    x264's frame threads wait on each other, so 2 threads leave a core idle part of the
    time). ffmpeg runs niced, so this does not starve the web app.

    The filter graph runs in one thread up to 1080p: slice threading makes the HDR
    chain cost ~15 % more CPU (zscale recomputes the rows around every slice) and the
    decoder and x264 threads keep the cores busy anyway (10 s 1080p HLG: -0.5 CPU-s).
    A large source is decoded in one thread (memory, below), so there the filters
    (the downscale) get the CPUs, or the main thread would hold up x264.
    """
    cpus = limits.cpus or usable_cpus()
    cap = limits.threads
    decoder = cap or cpus
    filters = 1
    x264 = cap or max(1, cpus * 3 // 2)
    params = f"threads={x264}"
    if source_pixels > LARGE_FRAME_PIXELS:
        decoder = 1
        filters = cap or cpus
    if output_pixels > LARGE_FRAME_PIXELS:
        x264 = min(x264, LARGE_X264_THREADS)
        params = f"threads={x264}:rc-lookahead={limits.large_rc_lookahead}:sync-lookahead=0"
    return Threads(decoder=decoder, filters=filters, x264=x264, x264_params=params)


def copy_blockers(info: MediaInfo, target: Target) -> list[str]:
    """Why the video stream can NOT be remuxed as is (empty list: it can).

    The exact rule: the first video stream is copied bit for bit into a faststart
    MP4 only when ALL of these hold

    * container is MP4/MOV or Matroska/WebM (AVI and MPEG-TS timestamps are not
      trusted for a remux);
    * codec H.264, profile Baseline, Constrained Baseline, Main or High;
    * pix_fmt exactly ``yuv420p`` (8 bit, 4:2:0, limited range);
    * SDR: transfer is not HLG/PQ and there is no Dolby Vision configuration;
    * no display rotation: rotated input is re-encoded upright, so the published
      file never relies on a player honouring the display matrix;
    * even width and height, long side <= ``target.max_long_side``;
    * video bitrate <= 10 Mbit/s per megapixel (stream bit_rate, or the container's
      when the stream has none); an unknown bitrate blocks the copy.

    Audio is decided separately: the chosen audio stream (the first decodable one)
    is copied when it is AAC with at most 2 channels, otherwise it is re-encoded to
    AAC stereo; no audio gives an MP4 without audio. Data, timecode, subtitle and
    metadata tracks and the container metadata (GPS location!) are always dropped.
    """
    v = info.video
    assert v is not None
    why = []
    if info.demuxer not in COPY_CONTAINERS:
        why.append(f"container {info.demuxer}")
    if v.codec != "h264":
        why.append(f"codec {v.codec}")
    elif v.profile not in COPY_PROFILES:
        why.append(f"profile {v.profile}")
    if v.pix_fmt != "yuv420p":
        why.append(f"pix_fmt {v.pix_fmt}")
    if v.hdr:
        why.append(f"hdr {v.hdr}")
    if v.rotation:
        why.append(f"rotation {v.rotation}")
    if v.width % 2 or v.height % 2:
        why.append("odd size")
    if max(v.width, v.height) > target.max_long_side:
        why.append("larger than target")
    rate = v.bit_rate or info.bit_rate
    megapixels = v.width * v.height / 1e6
    if not rate:
        why.append("unknown bitrate")
    elif rate > COPY_MAX_BITS_PER_PIXEL_SECOND * 1e6 * megapixels:
        why.append(f"bitrate {rate / 1e6:.1f} Mbit/s")
    return why


def output_size(v: VideoStream, max_long_side: int) -> tuple[int, int]:
    """Upright output size: long side <= max_long_side, never upscaled, both even."""
    w, h = v.display_width, v.display_height
    long_side = max(w, h)
    if long_side > max_long_side:
        if w >= h:
            w, h = max_long_side, h * max_long_side / w
        else:
            w, h = w * max_long_side / h, max_long_side
        w, h = round(w / 2) * 2, round(h / 2) * 2
    else:
        w, h = w // 2 * 2, h // 2 * 2
    return max(w, 2), max(h, 2)


def _duration_words(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return "1 second" if seconds == 1 else f"{seconds:g} seconds"


def refuse_by_limits(info: MediaInfo, limits: Limits) -> None:
    """Raise MediaError when the probe shows the input is outside the limits."""
    summary = info.summary()
    v = info.video
    if v is None:
        raise MediaError(Code.NO_VIDEO, probe_summary=summary)
    if v.codec not in VIDEO_CODECS:
        raise MediaError(
            Code.UNSUPPORTED_CODEC,
            detail=f"video codec {v.codec or v.codec_tag!r}",
            probe_summary=summary,
        )
    if info.duration > limits.max_duration:
        raise MediaError(
            Code.TOO_LONG,
            duration=_duration_words(limits.max_duration),
            detail=f"duration {info.duration:.1f}s > {limits.max_duration:g}s",
            probe_summary=summary,
        )
    if v.width > limits.max_width or v.height > limits.max_height or v.width * v.height == 0:
        raise MediaError(
            Code.TOO_LARGE,
            width=limits.max_width,
            height=limits.max_height,
            detail=f"{v.width}x{v.height}",
            probe_summary=summary,
        )
    if v.fps > limits.max_fps:
        raise MediaError(
            Code.TOO_FAST, fps=limits.max_fps, detail=f"{v.fps:.2f} fps", probe_summary=summary
        )


@dataclass(frozen=True)
class Cost:
    """What converting a video costs here, at the least (see DECODE_COST above)."""

    frames: int
    encoded_pixels: float  # decode + tone map + encode, in output-pixel equivalents
    cpu_seconds: float
    wall_seconds: float  # with every usable CPU busy the whole time: a lower bound


def estimate_cost(
    v: VideoStream, duration: float, width: int, height: int, *, copy: bool, tonemap: bool,
    limits: Limits,
) -> Cost:  # fmt: skip
    """Lower bound of the CPU and wall time of the plan's ffmpeg run(s) on this machine."""
    frames = max(1, round(duration * (v.fps or v.r_fps or FALLBACK_FPS)))
    source = v.width * v.height
    if copy:
        per_frame = source * COPY_COST
    else:
        decode = source * DECODE_COST.get(v.codec, OTHER_DECODE_COST)
        per_frame = decode + width * height * (1 + (TONEMAP_COST if tonemap else 0))
    work = frames * per_frame
    cpu_seconds = work / limits.pixels_per_cpu_second
    cpus = limits.cpus or usable_cpus()
    return Cost(frames, work, cpu_seconds, cpu_seconds / max(1.0, cpus))


def refuse_by_cost(cost: Cost, limits: Limits, summary: str = "") -> None:
    """Raise MediaError when even the cheapest case cannot finish within one ffmpeg run's
    wall-clock timeout or CPU-seconds limit: better a clear "trim it" now than a "took too
    long" after 30 minutes that held up every video behind it."""
    cpus = max(1.0, limits.cpus or usable_cpus())
    # Both limits as a wall-clock budget with every CPU busy: the tighter one counts.
    budget = limits.timeout
    if limits.cpu_seconds > 0:
        budget = min(budget, limits.cpu_seconds / cpus)
    if cost.wall_seconds <= budget:
        return
    raise MediaError(
        Code.TOO_COSTLY,
        limit=_duration_words(round(budget / 60) * 60 if budget >= 120 else budget),
        minutes=max(1, round(cost.wall_seconds / 60)),
        detail=(
            f"estimated {cost.cpu_seconds:.0f} CPU-s, {cost.wall_seconds:.0f} s wall at least"
            f" ({cost.frames} frames, {cost.encoded_pixels / 1e9:.1f} G encoded pixels at"
            f" {limits.pixels_per_cpu_second / 1e6:g} M/CPU-s on {cpus:g} CPUs); limits"
            f" {limits.timeout:g} s wall, {limits.cpu_seconds} CPU-s"
        ),
        probe_summary=summary,
    )


@dataclass(frozen=True)
class Plan:
    demuxer: str
    video_index: int
    audio_index: int | None
    copy_video: bool
    copy_audio: bool
    downmix: bool  # audio has > 2 channels: -ac 2
    width: int  # output size, upright
    height: int
    tonemap: str  # "", "hlg" or "pq"
    reasons: tuple[str, ...]  # why the video is re-encoded (empty when copied)
    duration: float  # of the source, for progress
    target: Target
    limits: Limits
    video_filter: str  # filter chain from the decoded frame to the encoded one ("" = copy)
    source_pixels: int = 0  # coded width x height of the source video
    cost: Cost | None = None  # what it costs here at the least (estimate_cost)

    @property
    def threads(self) -> Threads:
        return thread_counts(self.limits, self.source_pixels, self.width * self.height)

    def _head(self) -> list[str]:
        return [
            self.limits.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "warning",
            "-protocol_whitelist", "file",
        ]  # fmt: skip

    def _audio_args(self) -> list[str]:
        if self.audio_index is None:
            return ["-an"]
        args = ["-map", f"0:{self.audio_index}"]
        if self.copy_audio:
            return [*args, "-c:a", "copy"]
        args += ["-c:a", "aac", "-b:a", self.target.audio_bitrate]
        if self.downmix:
            args += ["-ac", "2"]
        return args

    def _mp4_tail(self, video_out: Path) -> list[str]:
        return [
            "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn",
            "-t", f"{self.limits.max_duration:g}",
            "-movflags", "+faststart", "-f", "mp4", ffprobe_input(video_out),
        ]  # fmt: skip

    def _poster_out(self, poster_out: Path) -> list[str]:
        return ["-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1",
                ffprobe_input(poster_out)]  # fmt: skip

    def commands(self, source: Path, video_out: Path, poster_out: Path) -> list[list[str]]:
        """The ffmpeg runs, in order. Each writes ``-progress`` to stdout."""
        th = self.threads
        progress = ["-progress", "pipe:1"]
        src = ["-f", self.demuxer, "-i", ffprobe_input(source)]
        # trim first: `thumbnail` only looks at the first THUMBNAIL_FRAMES frames, and
        # without it every later frame would still be scaled for nothing.
        poster_chain = (
            f"trim=end_frame={THUMBNAIL_FRAMES},scale={self.target.poster_width}:-2,"
            f"thumbnail=n={THUMBNAIL_FRAMES}"
        )
        if self.copy_video:
            remux = [
                *self._head(), "-threads", str(th.decoder), *src,
                "-map", f"0:{self.video_index}", "-c:v", "copy",
                *self._audio_args(), *progress, *self._mp4_tail(video_out),
            ]  # fmt: skip
            # Poster from a cheap decode: key frames only, of the (small) remuxed file.
            poster = [
                *self._head(), "-threads", str(th.decoder), "-skip_frame", "nokey",
                "-f", "mov", "-i", ffprobe_input(video_out),
                "-map", "0:v:0", "-an", "-filter_threads", str(th.filters),
                "-vf", f"{poster_chain},format=yuvj420p", *progress,
                *self._poster_out(poster_out),
            ]  # fmt: skip
            return [remux, poster]
        graph = (
            f"[0:{self.video_index}]{self.video_filter},split=2[v][p];"
            f"[p]{poster_chain},format=yuvj420p[poster]"
        )
        encode = [
            *self._head(), "-threads", str(th.decoder), *src,
            "-filter_complex_threads", str(th.filters), "-filter_complex", graph,
            "-map", "[v]", "-c:v", "libx264", "-profile:v", self.target.profile,
            "-preset", self.target.preset, "-crf", str(self.target.crf),
            "-pix_fmt", "yuv420p", "-threads", str(th.x264), "-x264-params", th.x264_params,
            "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
            "-color_range", "tv", "-fps_mode", "vfr",
            *self._audio_args(), *progress, *self._mp4_tail(video_out),
            "-map", "[poster]", *self._poster_out(poster_out),
        ]  # fmt: skip
        return [encode]


_MATRIX = {
    "bt709": "bt709",
    "bt470bg": "bt601",
    "smpte170m": "bt601",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
}


def sdr_filter(v: VideoStream, width: int, height: int) -> str:
    """Scale + convert to 8-bit 4:2:0 limited-range BT.709 (swscale)."""
    matrix = _MATRIX.get(v.color_space) or ("bt709" if v.height >= 720 else "bt601")
    in_range = "pc" if v.color_range == "pc" or v.pix_fmt.startswith("yuvj") else "tv"
    return (
        f"scale={width}:{height}:in_color_matrix={matrix}:out_color_matrix=bt709"
        f":in_range={in_range}:out_range=tv,format=yuv420p,setsar=1"
    )


def plan(info: MediaInfo, target: Target = Target(), limits: Limits = Limits()) -> Plan:  # noqa: B008
    """Decide copy vs. re-encode and build the filter chain; raise MediaError to refuse
    (outside the limits, or too costly to finish within the timeout here)."""
    refuse_by_limits(info, limits)
    v = info.video
    assert v is not None
    width, height = output_size(v, target.max_long_side)
    audio = info.first_audio
    blockers = copy_blockers(info, target)
    copy_video = not blockers
    copy_audio = audio is not None and audio.codec in COPY_AUDIO and audio.channels <= 2
    transfer = v.hdr_transfer
    if copy_video:
        vf = ""
    elif transfer:
        vf = tonemap.hdr_filter(v, width, height, transfer)
    else:
        vf = sdr_filter(v, width, height)
    duration = min(info.duration, limits.max_duration)
    cost = estimate_cost(
        v, duration, width, height, copy=copy_video, tonemap=bool(transfer), limits=limits
    )
    refuse_by_cost(cost, limits, info.summary())
    return Plan(
        demuxer=info.demuxer,
        video_index=v.index,
        audio_index=audio.index if audio else None,
        copy_video=copy_video,
        copy_audio=copy_audio,
        downmix=audio is not None and audio.channels > 2,
        width=width,
        height=height,
        tonemap=transfer,
        reasons=tuple(blockers),
        duration=duration,
        target=target,
        limits=limits,
        video_filter=vf,
        source_pixels=v.width * v.height,
        cost=cost,
    )
