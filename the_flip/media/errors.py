"""The pipeline's error vocabulary: every failure code with the sentence a maintainer reads.

``str(MediaError)`` is always such a sentence; the technical part (ffmpeg/ffprobe stderr, a
one-line probe summary) rides along in attributes for admins, logs and Sentry. The worker's
own failures (a missing original, giving up) use the same vocabulary, so every sentence a
maintainer can see about a video is written here, once.
"""

from __future__ import annotations

import enum
import re


class Code(enum.StrEnum):
    """A failure's short machine id (``MediaError.code``, Sentry's ``failure`` tag) and, in
    ``sentence``, what the maintainer reads (``{fields}`` are filled in by ``reason()``)."""

    UNREADABLE = "unreadable", "This file is not a video we can read."
    UNSUPPORTED_FORMAT = "unsupported_format", "This file is not a video we can read."
    UNSUPPORTED_CODEC = "unsupported_codec", "This video is in a format we can't convert."
    NO_VIDEO = "no_video", "This file has no video in it."
    TOO_LONG = "too_long", "This video is longer than {duration}."
    TOO_LARGE = "too_large", "This video's picture is larger than {width} by {height} pixels."
    TOO_FAST = "too_fast", "This video has more than {fps:g} frames per second."
    TOO_COSTLY = (
        "too_costly",
        "This video is too long and too detailed for this server to convert within {limit}"
        " (it would take at least {minutes} minutes). Trim it, or record at a lower"
        " resolution or frame rate.",
    )
    DAMAGED = "damaged", "The video file is damaged or incomplete."
    TIMEOUT = "timeout", "Processing took too long."
    RESOURCES = (
        "resources",
        ("This video needs more memory or computing time than the server allows."),
    )
    OUTPUT_TOO_LARGE = "output_too_large", "The converted video would be too large to store."
    DISK_FULL = "disk_full", "The server ran out of disk space while converting this video."
    FFMPEG_MISSING = "ffmpeg_missing", "The video converter is not installed on the server."
    FAILED = "failed", "The video could not be converted."
    # Raised by the worker, not the pipeline:
    MISSING_ORIGINAL = "missing_original", "The uploaded file is missing. Upload the video again."
    FILE_TOO_LARGE = (
        "file_too_large",
        "This video is larger than {mb} MB, the most we accept for one file.",
    )
    # Not a failure: the video waits in line with this reason (shown in the admin).
    STORE_UNAVAILABLE = "store_unavailable", "The file store did not answer; we will try again."
    WORKER_ERROR = (
        "worker_error",
        "Something went wrong on the server while converting this video; we will try again.",
    )
    GAVE_UP = "gave_up", "We tried {attempts} times and could not process this video."
    # What the page shows for a failed item that carries no reason (it never should).
    UNKNOWN = "unknown", "We could not process this file."

    def __new__(cls, code: str, sentence: str) -> Code:
        member = str.__new__(cls, code)
        member._value_ = code
        member.sentence = sentence
        return member

    def reason(self, **fields: object) -> str:
        return self.sentence.format(**fields)


# How much of ffmpeg's last words each place keeps (characters, from the end).
STDERR_TAIL = 4096  # the pipeline: what a run's stderr is cut to
DETAIL_KEPT = 8000  # the media row's error_detail (the admin shows it)
DETAIL_REPORTED = 4000  # a Sentry event and the task log
DETAIL_LOGGED = 500  # the one-line failure log


class MediaError(Exception):
    """A video we refuse or failed to convert: ``code`` (a Code) and ``reason`` (its sentence,
    with ``fields`` filled in), plus ``detail`` and ``probe_summary`` for people who debug."""

    def __init__(
        self, code: Code, *, detail: str = "", probe_summary: str = "", **fields: object
    ) -> None:
        self.code = code
        self.reason = code.reason(**fields)
        super().__init__(self.reason)
        self.detail = detail
        self.probe_summary = probe_summary

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"MediaError({self.reason!r}, code={self.code.value!r})"


class TranscodeCancelled(Exception):
    """The caller's cancel event was set; ffmpeg has been killed."""


# stderr of a child that hit RLIMIT_AS (or the machine is out of memory)
NO_MEMORY = re.compile(
    r"cannot allocate memory|bad_alloc|out of memory|failed to map segment"
    r"|error while loading shared libraries",
    re.IGNORECASE,
)
