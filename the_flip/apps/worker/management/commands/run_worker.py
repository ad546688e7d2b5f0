"""Run the huey consumer the_flip way (supervisord, `make run`, `make worker` and the
container use this instead of `run_huey`): start-up reset of stale work, graceful stop on
SIGTERM/SIGINT, recycling after WORKER_MAX_TASKS tasks. Takes run_huey's options; `-M N`
overrides the recycle count (0: never). Runs every system check but the bucket's: a file
store down for a minute must not stop the worker from starting (its transcodes wait and
retry)."""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from huey.consumer_options import ConsumerConfig
from huey.contrib.djhuey.management.commands.run_huey import Command as RunHuey

from the_flip.apps.worker import health
from the_flip.storage import SkipsStorageCheck

log = logging.getLogger("the_flip.worker")


class Command(SkipsStorageCheck, RunHuey):
    help = "Run the huey consumer with graceful stop, stale-work reset and recycling."

    def handle(self, *args, **options):
        from huey.contrib.djhuey import HUEY

        from the_flip.apps.worker.consumer import TheFlipConsumer

        consumer_options = dict(settings.HUEY.get("consumer", {}))
        consumer_options.update({k: v for k, v in options.items() if v is not None})
        recycle_after = consumer_options.pop("max_tasks", None)
        if recycle_after is None:
            recycle_after = settings.WORKER_MAX_TASKS
        for django_option in ("verbosity", "settings", "pythonpath", "traceback", "no_color",
                              "force_color", "skip_checks", "disable_autoload"):  # fmt: skip
            consumer_options.pop(django_option, None)
        if not options.get("disable_autoload"):
            autodiscover_modules("tasks")

        config = ConsumerConfig(**consumer_options)
        config.validate()
        huey_logger = logging.getLogger("huey")
        if not huey_logger.handlers:
            config.setup_logger(huey_logger)

        values = dict(config.values)
        values.pop("max_tasks", None)
        values.setdefault("shutdown_timeout", settings.WORKER_SHUTDOWN_TIMEOUT)
        consumer = TheFlipConsumer(
            HUEY,
            recycle_after=int(recycle_after or 0),
            min_lifetime=settings.WORKER_MIN_LIFETIME,
            **values,
        )
        stop_beating = threading.Event()
        health.start_beating(stop_beating)
        startup_reset()
        connections.close_all()  # the main thread's connection; threads open their own
        try:
            consumer.run()
        finally:
            stop_beating.set()


def startup_reset() -> None:
    """Videos left `processing` by a worker that died (kill -9, OOM, power) go back in line
    now, not a few minutes later. Only videos whose own worker is gone count (other workers
    may be transcoding on this database); the progress heartbeat of a video whose worker
    just died may be a second old, so we wait out WORKER_STARTUP_STALE_SECONDS for those."""
    from the_flip.apps.maintenance.models import LogEntryMedia
    from the_flip.apps.worker import tasks

    margin = settings.WORKER_STARTUP_STALE_SECONDS
    try:
        close_old_connections()
        live = health.live_workers()
        orphaned = [
            heartbeat_at
            for worker, heartbeat_at in LogEntryMedia.objects.filter(
                transcode_status=LogEntryMedia.Status.PROCESSING
            ).values_list("worker", "heartbeat_at")
            if heartbeat_at is not None and not health.holder_is_alive(worker, live)
        ]
        newest = max(orphaned, default=None)
        if newest is not None:
            wait = margin - (timezone.now() - newest).total_seconds()
            if wait > 0:
                time.sleep(min(wait, margin))
        counts = tasks.requeue_stale_transcodes(stale_after=margin)
        if any(counts.values()):
            log.warning("start-up: stale transcodes %s", counts)
    except Exception:  # the database may be down: the periodic reset will do it later
        log.exception("start-up reset of stale transcodes failed; the periodic one will retry")
