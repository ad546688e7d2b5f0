"""Development settings: debug on unless DEBUG says otherwise (used by .vscode/launch.json)."""

import os

os.environ.setdefault("DEBUG", "1")

from .base import *  # noqa: F403
