"""The video pipeline: probe -> plan -> transcode. Plain Python, no Django.

from the_flip.media import transcode, Target, Limits, MediaError
result = transcode(upload_path, workdir, target=Target(), limits=Limits(),
                   on_progress=heartbeat, cancel=cancel_event)
"""

from .errors import MediaError, TranscodeCancelled
from .plan import Cost, Plan, plan
from .probe import AudioStream, MediaInfo, VideoStream, probe
from .spec import Limits, Target
from .transcode import TranscodeResult, tool_versions, transcode

__all__ = [
    "AudioStream",
    "Cost",
    "Limits",
    "MediaError",
    "MediaInfo",
    "Plan",
    "Target",
    "TranscodeCancelled",
    "TranscodeResult",
    "VideoStream",
    "plan",
    "probe",
    "tool_versions",
    "transcode",
]
