"""The product spec (``Target``) and the policy for untrusted input (``Limits``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """What every published video looks like: H.264 main, yuv420p, AAC, MP4 with faststart."""

    max_long_side: int = 2400
    crf: int = 23
    preset: str = "medium"
    profile: str = "main"
    audio_bitrate: str = "128k"
    poster_width: int = 320


@dataclass(frozen=True)
class Limits:
    """Policy for untrusted input and for the ffmpeg/ffprobe child processes."""

    max_duration: float = 15 * 60  # seconds
    max_width: int = 8192
    max_height: int = 8192
    max_fps: float = 240
    timeout: float = 30 * 60  # wall clock seconds per ffmpeg run; kills the process group
    cpu_seconds: int = 60 * 60  # RLIMIT_CPU
    address_space: int = 6 * 1024**3  # RLIMIT_AS bytes
    max_output_bytes: int = 2 * 1024**3  # RLIMIT_FSIZE
    # Thread cap for the decoder, the filter graph and x264. None (the default) sizes
    # them from the CPUs this process may run on (see ``plan.thread_counts``): x264 gets
    # its own default of 1.5 x the CPUs, which is safe because ffmpeg runs niced.
    threads: int | None = None
    # CPUs to size those threads for: the caller knows the machine (settings pass the cgroup
    # CPU quota from the_flip.sizing); None uses this process's affinity mask.
    cpus: int | None = None
    # x264's rc-lookahead for outputs larger than 1080p (preset medium's 40 costs ~10 MB a
    # frame at 2400x1350; see plan.py). Settings lower it on a small machine.
    large_rc_lookahead: int = 20
    nice: int = 10  # plus ionice best-effort level 7 when the ionice binary exists
    # SCHED_IDLE: ffmpeg gets a core only when nothing else (the web) wants it, so a page
    # request never waits behind a transcode; with nothing else to do it runs at full speed.
    idle_cpu: bool = True
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    # How fast this machine converts, for refusing up front what cannot finish within
    # ``timeout`` (see ``plan.estimate_cost``): output pixels per CPU-second that x264
    # preset medium and the scaling manage on low-detail footage, measured with
    # bench/cost.py (docs/benchmarks.md). Wall time is estimated over ``cpus``.
    pixels_per_cpu_second: float = 37e6
