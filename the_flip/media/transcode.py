"""Step 3: run the plan under limits, report progress, classify failures."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import errors
from .errors import Code, MediaError, TranscodeCancelled
from .plan import Plan, plan
from .probe import MediaInfo, probe
from .proc import CancelFlag, Cancelled, Outcome, run
from .spec import Limits, Target

VERSION_TIMEOUT = 20.0


@dataclass(frozen=True)
class TranscodeResult:
    video_path: Path
    poster_path: Path
    duration: float  # of the output
    width: int  # of the output, upright
    height: int
    copied: bool  # True when the video stream was remuxed, not re-encoded
    reencode_reasons: tuple[str, ...]  # why it was not copied (empty when copied)
    info: MediaInfo  # the probe of the source
    stderr_tail: str  # last ~4 KB of ffmpeg stderr


class _Progress:
    """Turns ``-progress`` lines into a percentage; calls back at most once a second."""

    def __init__(self, duration: float, callback: Callable[[int], None] | None):
        self.duration = duration
        self.callback = callback
        self.percent = 0
        self.last_call = time.monotonic()  # first report ~1 s after start

    def line(self, text: str) -> None:  # reader thread
        key, _, value = text.partition("=")
        if key in ("out_time_us", "out_time_ms") and self.duration > 0:
            try:
                us = int(value)
            except ValueError:
                return
            pct = int(us / (self.duration * 1e6) * 100)
            self.percent = max(self.percent, min(99, max(0, pct)))
        elif key == "progress" and value == "end":
            self.percent = 100

    def tick(self) -> None:  # caller's thread
        now = time.monotonic()
        if self.callback is not None and now - self.last_call >= 1.0:
            self.last_call = now
            self.callback(self.percent)


_DAMAGED = re.compile(
    r"invalid data found|partial file|moov atom not found|error while decoding|corrupt"
    r"|invalid nal|missing picture|error splitting the input|truncat|end of file",
    re.IGNORECASE,
)


def classify(out: Outcome, summary: str = "") -> MediaError:
    """A failed ffmpeg run -> MediaError with a sentence for maintainers."""
    tail = out.stderr_tail
    sig = out.signal
    detail = tail
    if out.timed_out:
        code = Code.TIMEOUT
    elif sig == signal.SIGXFSZ:
        code = Code.OUTPUT_TOO_LARGE
    elif sig in (signal.SIGXCPU, signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) or (
        errors.NO_MEMORY.search(tail)
    ):
        code = Code.RESOURCES
        detail = f"killed by signal {sig}\n{tail}" if sig else tail
    elif "No space left on device" in tail:
        code = Code.DISK_FULL
    elif _DAMAGED.search(tail):
        code = Code.DAMAGED
    else:
        code = Code.FAILED
    return MediaError(code, detail=detail, probe_summary=summary)


def _run(cmd, limits, progress, cancel, summary) -> Outcome:
    try:
        out = run(
            cmd,
            limits,
            timeout=limits.timeout,
            on_line=progress.line,
            tick=progress.tick,
            cancel=cancel,
        )
    except Cancelled:
        raise TranscodeCancelled("the transcode was cancelled") from None
    except FileNotFoundError as exc:
        raise MediaError(Code.FFMPEG_MISSING, detail=str(exc)) from exc
    if out.returncode != 0 or out.timed_out:
        raise classify(out, summary)
    return out


def _check_output(video: Path, poster: Path, limits: Limits, summary: str, tail: str):
    if not video.is_file() or video.stat().st_size == 0:
        raise MediaError(Code.DAMAGED, detail=tail, probe_summary=summary)
    if not poster.is_file() or poster.stat().st_size == 0:
        raise MediaError(Code.DAMAGED, detail="no poster frame\n" + tail, probe_summary=summary)
    try:
        out = probe(video, limits, detect_vfr=False)
    except MediaError as exc:
        raise MediaError(
            Code.DAMAGED, detail=exc.detail + "\n" + tail, probe_summary=summary
        ) from exc
    if out.video is None or out.duration <= 0:
        raise MediaError(Code.DAMAGED, detail=tail, probe_summary=summary)
    return out


def transcode(
    source: Path,
    workdir: Path,
    *,
    target: Target = Target(),  # noqa: B008
    limits: Limits = Limits(),  # noqa: B008
    on_progress: Callable[[int], None] | None = None,
    cancel: CancelFlag | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> TranscodeResult:
    """Probe, plan and convert ``source``; write ``workdir/video.mp4`` and ``workdir/poster.jpg``.

    The caller owns ``workdir`` (creates and removes it). Intermediates go to a fresh
    temp dir inside it, and the two results are moved into place only on success.

    ``on_progress(percent)`` is called about once a second while ffmpeg runs, also
    when the value is unchanged (a heartbeat), never more often than once a second;
    the return of this function is the completion signal. Setting ``cancel`` kills
    ffmpeg's process group within ~0.1 s and raises ``TranscodeCancelled``.
    ``on_plan(plan)`` sees the plan (and its ``cost``) before ffmpeg starts; whatever it
    raises propagates, so the caller can put a long job off without converting anything.
    Everything else that goes wrong raises ``MediaError``.
    """
    source = Path(source)
    workdir = Path(workdir)
    if cancel is not None and cancel.is_set():
        raise TranscodeCancelled("the transcode was cancelled")
    info = probe(source, limits)
    the_plan: Plan = plan(info, target, limits)
    if on_plan is not None:
        on_plan(the_plan)
    summary = info.summary()
    scratch = Path(tempfile.mkdtemp(prefix="transcode-", dir=workdir))
    try:
        video_tmp, poster_tmp = scratch / "video.mp4", scratch / "poster.jpg"
        progress = _Progress(the_plan.duration, on_progress)
        tails = []
        for cmd in the_plan.commands(source, video_tmp, poster_tmp):
            tails.append(_run(cmd, limits, progress, cancel, summary).stderr_tail)
        tail = "\n".join(t for t in tails if t)[-errors.STDERR_TAIL :]
        out = _check_output(video_tmp, poster_tmp, limits, summary, tail)
        if "partial file" in tail or out.duration < the_plan.duration * 0.9 - 0.5:
            # ffmpeg converts what it can of a truncated upload and exits 0: refuse it.
            raise MediaError(
                Code.DAMAGED,
                detail=f"output {out.duration:.2f}s of {the_plan.duration:.2f}s\n{tail}",
                probe_summary=summary,
            )
        video_path, poster_path = workdir / "video.mp4", workdir / "poster.jpg"
        os.replace(video_tmp, video_path)
        os.replace(poster_tmp, poster_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert out.video is not None
    return TranscodeResult(
        video_path=video_path,
        poster_path=poster_path,
        duration=out.duration,
        width=out.video.display_width,
        height=out.video.display_height,
        copied=the_plan.copy_video,
        reencode_reasons=the_plan.reasons,
        info=info,
        stderr_tail=tail,
    )


def tool_versions(limits: Limits = Limits()) -> dict[str, str]:  # noqa: B008
    """{"ffmpeg": "5.1.9-0+deb12u1", "ffprobe": "..."}; MediaError if missing/not runnable."""
    versions = {}
    for name, binary in (("ffmpeg", limits.ffmpeg), ("ffprobe", limits.ffprobe)):
        try:
            out = run([binary, "-hide_banner", "-version"], limits, timeout=VERSION_TIMEOUT,
                      capture_stdout=True)  # fmt: skip
        except (FileNotFoundError, PermissionError) as exc:
            raise MediaError(Code.FFMPEG_MISSING, detail=str(exc)) from exc
        text = out.stdout.decode("utf-8", "replace")
        match = re.match(rf"\S*{re.escape(name)}\S* version (\S+)", text)
        if out.returncode != 0 or not match:
            raise MediaError(
                Code.FFMPEG_MISSING,
                detail=f"{binary} -version exited {out.returncode}: "
                f"{out.stderr_tail or text[:500]}",
            )
        versions[name] = match.group(1)
    return versions
