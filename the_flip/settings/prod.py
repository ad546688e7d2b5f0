"""Production settings: the base settings; every knob is an environment variable."""

from .base import *  # noqa: F403
