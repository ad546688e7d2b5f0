"""huey tasks. Each is a thin wrapper: the work itself lives in plain functions."""

import logging
import os

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from .models import WorkerHeartbeat
from .transcoding import transcode_video

log = logging.getLogger(__name__)


@db_task()
def transcode_media(media_id: int) -> None:
    transcode_video(media_id)


@db_periodic_task(crontab(minute="*"))
def write_heartbeat() -> None:
    """Every minute: tell /healthz and check_worker that the consumer is alive."""
    WorkerHeartbeat.beat(os.getpid())


@on_startup()
def announce_startup() -> None:
    if not HUEY.immediate:
        WorkerHeartbeat.beat(os.getpid())
        log.info("worker %s started", os.getpid())
