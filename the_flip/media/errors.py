"""Errors raised by the media pipeline.

``str(MediaError)`` is always a sentence a museum maintainer understands; the
technical part (ffmpeg/ffprobe stderr, a one-line probe summary) rides along in
attributes for admins, logs and Sentry.
"""

from __future__ import annotations

import re


class MediaError(Exception):
    """A video we refuse or failed to convert, with a reason for people.

    ``code`` is a short machine id, one of: ``unreadable``, ``unsupported_format``,
    ``unsupported_codec``, ``no_video``, ``too_long``, ``too_large``, ``too_fast``,
    ``too_costly``, ``damaged``, ``timeout``, ``resources``, ``output_too_large``,
    ``ffmpeg_missing``, ``failed``.
    """

    def __init__(self, reason: str, *, code: str, detail: str = "", probe_summary: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.detail = detail
        self.probe_summary = probe_summary

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"MediaError({self.reason!r}, code={self.code!r})"


class TranscodeCancelled(Exception):
    """The caller's cancel event was set; ffmpeg has been killed."""


# stderr of a child that hit RLIMIT_AS (or the machine is out of memory)
NO_MEMORY = re.compile(
    r"cannot allocate memory|bad_alloc|out of memory|failed to map segment"
    r"|error while loading shared libraries",
    re.IGNORECASE,
)

# Sentences shown to maintainers. Kept together so wording stays consistent.
NOT_A_VIDEO = "This file is not a video we can read."
NO_VIDEO = "This file has no video in it."
DAMAGED = "The video file is damaged or incomplete."
TOO_SLOW = "Processing took too long."
RESOURCES = "This video needs more memory or computing time than the server allows."
OUTPUT_TOO_LARGE = "The converted video would be too large to store."
FFMPEG_MISSING = "The video converter is not installed on the server."
FAILED = "The video could not be converted."
TOO_COSTLY = (
    "This video is too long and too detailed for this server to convert within {limit}"
    " (it would take at least {minutes} minutes). Trim it, or record at a lower resolution"
    " or frame rate."
)
