"""Step 1: ffprobe JSON -> typed ``MediaInfo``.

ffprobe runs with ``-protocol_whitelist file`` and ``-format_whitelist`` set to the
demuxers we accept, so a playlist (HLS, ffconcat), an image sequence or any other
demuxer disguised as ``.mov`` is rejected right after format detection, before
its header is parsed and before it can open any other file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import errors
from .errors import Code, MediaError
from .proc import run
from .spec import Limits

# ffprobe format_name -> demuxer passed to ffmpeg with -f. Nothing else is opened.
FORMATS: dict[str, str] = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mov",
    "matroska,webm": "matroska",
    "avi": "avi",
    "mpegts": "mpegts",
}
DEMUXERS = ("mov", "matroska", "avi", "mpegts")  # AVFormatContext.format_whitelist

VIDEO_CODECS = frozenset(
    [
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "mpeg4",
        "h263",
        "mjpeg",
        "mpeg2video",
        "mpeg1video",
        "prores",
        "dnxhd",
    ]
)
AUDIO_CODECS = frozenset(
    [
        "aac",
        "mp3",
        "mp2",
        "opus",
        "vorbis",
        "ac3",
        "eac3",
        "alac",
        "flac",
        "amr_nb",
        "amr_wb",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_s24be",
        "pcm_s32le",
        "pcm_f32le",
        "pcm_u8",
        "pcm_mulaw",
        "pcm_alaw",
        "adpcm_ima_qt",
        "adpcm_ima_wav",
        "adpcm_ms",
    ]
)

PROBE_TIMEOUT = 60.0


def ffprobe_input(path: Path) -> str:
    """``file:`` + absolute path: never a URL, never an option, never a protocol."""
    return "file:" + os.path.abspath(os.fspath(path))


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    profile: str
    codec_tag: str
    width: int  # coded frame size (before display rotation)
    height: int
    pix_fmt: str
    bit_depth: int
    chroma: str  # "420", "422", "444", "400" or "" (unknown)
    color_range: str
    color_space: str
    color_transfer: str
    color_primaries: str
    rotation: int  # clockwise degrees to display upright: 0, 90, 180, 270
    fps: float  # average frame rate
    r_fps: float  # ffprobe r_frame_rate (the base rate)
    vfr: bool
    hdr: str  # "", "hlg", "pq", "dolby_vision"
    dv_profile: int | None
    dv_compat_id: int | None
    bit_rate: int | None

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def hdr_transfer(self) -> str:
        """The transfer to tone-map from: "hlg", "pq" or "" (SDR)."""
        if self.hdr in ("hlg", "pq"):
            return self.hdr
        if self.hdr == "dolby_vision":
            if self.color_transfer == "arib-std-b67" or self.dv_compat_id == 4:
                return "hlg"
            return "pq"  # profiles 5, 7, 8.1: PQ base layer (profile 5 best effort)
        return ""


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    bit_rate: int | None
    decodable: bool  # a codec we accept, with channels and a sample rate


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format_name: str
    demuxer: str  # the -f value for ffmpeg
    duration: float
    size: int
    bit_rate: int | None
    video: VideoStream | None
    audio: tuple[AudioStream, ...] = ()

    @property
    def first_audio(self) -> AudioStream | None:
        """The first audio stream that ffmpeg can decode, or None."""
        return next((a for a in self.audio if a.decodable), None)

    def summary(self) -> str:
        """One line for logs/Sentry, e.g.
        ``mov,mp4 hevc 1920x1080 10bit HLG rot=90 30fps aac 2ch 3.0s``."""
        parts = [",".join(self.format_name.split(",")[:2])]
        v = self.video
        if v is None:
            parts.append("novideo")
        else:
            parts += [v.codec, f"{v.width}x{v.height}", f"{v.bit_depth}bit"]
            if v.chroma and v.chroma != "420":
                parts.append(v.chroma)
            if v.hdr == "dolby_vision":
                prof = f"{v.dv_profile}.{v.dv_compat_id}" if v.dv_profile is not None else "?"
                parts.append(f"DV{prof}")
            elif v.hdr:
                parts.append(v.hdr.upper())
            if v.rotation:
                parts.append(f"rot={v.rotation}")
            parts.append(f"{v.fps:.4g}fps" + (" vfr" if v.vfr else ""))
        a = self.first_audio
        if a is None:
            parts.append("noaudio" if not self.audio else "audio?")
        else:
            parts += [a.codec, f"{a.channels}ch"]
        parts.append(f"{self.duration:.1f}s")
        return " ".join(parts)


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0/1")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value) if value > 0 else 0.0


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def _bit_depth(pix_fmt: str, raw: object) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt or f"{depth}le" in pix_fmt or f"{depth}be" in pix_fmt:
            return depth
    return _int(raw) or 8


def _chroma(pix_fmt: str) -> str:
    if pix_fmt.startswith(("yuv420", "yuvj420", "nv12", "nv21", "p010", "p016")):
        return "420"
    if pix_fmt.startswith(("yuv422", "yuvj422", "nv16", "yuyv", "uyvy", "y210")):
        return "422"
    if pix_fmt.startswith(("yuv444", "yuvj444", "gbr", "rgb", "bgr")):
        return "444"
    if pix_fmt.startswith("gray"):
        return "400"
    return ""


def _rotation(stream: dict) -> int:
    for sd in stream.get("side_data_list") or ():
        if "rotation" in sd:
            return round(_float(sd["rotation"]) / 90) * 90 % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag is not None:
        return round(_float(tag) / 90) * 90 % 360
    return 0


def _video(s: dict, vfr_hint: bool | None) -> VideoStream:
    pix_fmt = s.get("pix_fmt") or ""
    trc = s.get("color_transfer") or ""
    dv_profile = dv_compat = None
    for sd in s.get("side_data_list") or ():
        if sd.get("side_data_type", "").startswith("DOVI configuration"):
            dv_profile = _int(sd.get("dv_profile"))
            dv_compat = _int(sd.get("dv_bl_signal_compatibility_id"))
    if dv_profile is not None:
        hdr = "dolby_vision"
    elif trc == "arib-std-b67":
        hdr = "hlg"
    elif trc == "smpte2084":
        hdr = "pq"
    else:
        hdr = ""
    fps = _rate(s.get("avg_frame_rate"))
    r_fps = _rate(s.get("r_frame_rate"))
    vfr = bool(fps and r_fps and abs(fps - r_fps) / r_fps > 0.01) if vfr_hint is None else vfr_hint
    return VideoStream(
        index=int(s["index"]),
        codec=s.get("codec_name") or "",
        profile=s.get("profile") or "",
        codec_tag=s.get("codec_tag_string") or "",
        width=_int(s.get("width")) or 0,
        height=_int(s.get("height")) or 0,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt, s.get("bits_per_raw_sample")),
        chroma=_chroma(pix_fmt),
        color_range=s.get("color_range") or "",
        color_space=s.get("color_space") or "",
        color_transfer=trc,
        color_primaries=s.get("color_primaries") or "",
        rotation=_rotation(s),
        fps=fps or r_fps,
        r_fps=r_fps,
        vfr=vfr,
        hdr=hdr,
        dv_profile=dv_profile,
        dv_compat_id=dv_compat,
        bit_rate=_int(s.get("bit_rate")),
    )


def parse(data: dict, path: str = "", vfr_hint: bool | None = None) -> MediaInfo:
    """Turn ffprobe's ``-show_format -show_streams`` JSON into ``MediaInfo`` (pure)."""
    fmt = data.get("format") or {}
    format_name = fmt.get("format_name") or ""
    demuxer = FORMATS.get(format_name, "")
    video = None
    audio: list[AudioStream] = []
    for s in data.get("streams") or ():
        kind = s.get("codec_type")
        attached = (s.get("disposition") or {}).get("attached_pic") == 1
        if kind == "video" and not attached and video is None and (_int(s.get("width")) or 0) > 0:
            video = _video(s, vfr_hint)
        elif kind == "audio":
            codec = s.get("codec_name") or ""
            channels = _int(s.get("channels")) or 0
            rate = _int(s.get("sample_rate")) or 0
            audio.append(
                AudioStream(
                    index=int(s["index"]),
                    codec=codec,
                    channels=channels,
                    bit_rate=_int(s.get("bit_rate")),
                    decodable=codec in AUDIO_CODECS and channels > 0 and rate > 0,
                )
            )
    duration = _float(fmt.get("duration"))
    if duration <= 0 and video is not None:
        for s in data.get("streams") or ():
            if s.get("index") == video.index:
                duration = _float(s.get("duration"))
    return MediaInfo(
        path=path,
        format_name=format_name,
        demuxer=demuxer,
        duration=duration,
        size=_int(fmt.get("size")) or 0,
        bit_rate=_int(fmt.get("bit_rate")),
        video=video,
        audio=tuple(audio),
    )


def _ffprobe(args: list[str], limits: Limits, head: bytes = b"") -> tuple[dict, str]:
    cmd = [limits.ffprobe, "-hide_banner", "-v", "error", "-protocol_whitelist", "file", *args]
    try:
        out = run(cmd, limits, timeout=min(PROBE_TIMEOUT, limits.timeout), capture_stdout=True)
    except FileNotFoundError as exc:
        raise MediaError(Code.FFMPEG_MISSING, detail=str(exc)) from exc
    if out.timed_out:
        raise MediaError(Code.TIMEOUT, detail=out.stderr_tail)
    if out.returncode < 0 or errors.NO_MEMORY.search(out.stderr_tail):
        raise MediaError(Code.RESOURCES, detail=f"exit {out.returncode}\n{out.stderr_tail}")
    if out.returncode != 0:
        raise _probe_failure(out.stderr_tail, head)
    try:
        return json.loads(out.stdout or b"{}"), out.stderr_tail
    except ValueError as exc:
        raise MediaError(Code.UNREADABLE, detail=str(exc)) from exc


_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid")


def _looks_like_media(head: bytes) -> bool:
    """MP4/MOV box, Matroska EBML, RIFF/AVI or MPEG-TS sync byte at the start."""
    return (
        head[4:8] in _BMFF_BOXES
        or head.startswith((b"\x1a\x45\xdf\xa3", b"RIFF"))
        or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47)
    )


def _probe_failure(stderr: str, head: bytes = b"") -> MediaError:
    low = stderr.lower()
    if "not on whitelist" in low:
        return MediaError(Code.UNSUPPORTED_FORMAT, detail=stderr)
    if not _looks_like_media(head):
        return MediaError(Code.UNREADABLE, detail=stderr)
    if any(
        s in low
        for s in ("moov atom not found", "partial file", "truncat", "invalid nal", "ebml header")
    ):
        return MediaError(Code.DAMAGED, detail=stderr)
    return MediaError(Code.UNREADABLE, detail=stderr)


def _detect_vfr(path: Path, info: MediaInfo, limits: Limits) -> bool | None:
    """Look at the first ~300 video packet timestamps (demux only, no decode)."""
    assert info.video is not None
    data, _ = _ffprobe(
        [
            "-f", info.demuxer,
            "-select_streams", "v:0",
            "-read_intervals", "%+#300",
            "-show_entries", "packet=pts,dts,duration",
            "-of", "json",
            ffprobe_input(path),
        ],
        limits,
    )  # fmt: skip
    stamps = sorted(
        p["pts"] if isinstance(p.get("pts"), int) else p.get("dts")
        for p in data.get("packets") or ()
        if isinstance(p.get("pts"), int) or isinstance(p.get("dts"), int)
    )
    deltas = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    if len(deltas) < 5:
        return None
    deltas.sort()
    median = deltas[len(deltas) // 2]
    spread = sum(1 for d in deltas if abs(d - median) > max(1, median * 0.1))
    return spread > len(deltas) * 0.05


def probe(source: Path, limits: Limits = Limits(), *, detect_vfr: bool = True) -> MediaInfo:  # noqa: B008
    """Probe ``source`` with ffprobe (contained) and return what it is.

    Raises ``MediaError`` for files that are missing, empty, not a media file, in a
    container outside the whitelist, or have no video. Limits on duration, size and
    frame rate are *policy* and are checked by ``plan()``.
    """
    source = Path(source)
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise MediaError(Code.UNREADABLE, detail=str(exc)) from exc
    if size == 0:
        raise MediaError(Code.DAMAGED, detail="the file is empty (0 bytes)")
    try:
        with open(source, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise MediaError(Code.UNREADABLE, detail=str(exc)) from exc
    data, _ = _ffprobe(
        [
            "-format_whitelist", ",".join(DEMUXERS),
            "-show_format", "-show_streams", "-of", "json",
            ffprobe_input(source),
        ],
        limits,
        head,
    )  # fmt: skip
    info = parse(data, str(source))
    if not info.demuxer:
        raise MediaError(
            Code.UNSUPPORTED_FORMAT,
            detail=f"container {info.format_name!r} is not accepted",
            probe_summary=info.summary(),
        )
    if info.video is None:
        raise MediaError(Code.NO_VIDEO, probe_summary=info.summary())
    vfr = _detect_vfr(source, info, limits) if detect_vfr else None
    if vfr is not None:
        info = parse(data, str(source), vfr_hint=vfr)
    return info
