"""A huey consumer that stops gracefully, recycles itself, and never takes work while stopping.

- SIGTERM and SIGINT (supervisord, a platform's deploy, Ctrl-C) both mean *graceful*: the
  running transcode is cancelled through ``lifecycle.STOPPING`` (the pipeline kills ffmpeg in
  ~0.1 s, the glue puts the video back in line and re-enqueues it without counting the
  attempt), the worker takes nothing new, and the process exits well inside supervisord's
  stopwaitsecs (WORKER_SHUTDOWN_TIMEOUT bounds the wait). A second signal stops at once.
- Recycling: after WORKER_MAX_TASKS tasks (periodic chores not counted) the process drains and
  exits 0; supervisord starts a fresh one. (huey's own ``-M/--max-tasks`` only restarts the
  worker *thread* inside the same process with thread workers, which frees nothing.)

huey 3.5 has no public hook for either, so this writes Consumer internals (``_signal_actions``,
``_restart``, ``_graceful``, ``_signum``); pyproject pins huey to 3.5.x and
tests/test_worker_consumer_internals.py fails first if an upgrade changes them.
"""

import logging
import os
import signal
import time

from huey.api import PeriodicTask
from huey.consumer import Consumer, Worker
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_INTERRUPTED

from . import lifecycle

log = logging.getLogger("the_flip.worker")


class DrainingWorker(Worker):
    """Takes no task once the consumer is stopping or recycling."""

    def loop(self, now=None):
        if lifecycle.STOPPING.is_set() or lifecycle.DRAINING.is_set():
            self.stop_flag.wait(0.1)
            return
        super().loop(now)
        consumer = self.the_flip_consumer
        if consumer.recycle_after and consumer.tasks_done >= consumer.recycle_after:
            consumer.recycle()


class TheFlipConsumer(Consumer):
    worker_class = DrainingWorker

    def __init__(self, huey, *, recycle_after: int = 0, min_lifetime: float = 5, **options):
        self.recycle_after = recycle_after
        self.min_lifetime = min_lifetime
        self.tasks_done = 0
        self.started = time.monotonic()
        super().__init__(huey, **options)
        huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_INTERRUPTED)(self._count_task)
        # Both stop signals are graceful (huey's SIGTERM would drop the running task).
        self._signal_actions[signal.SIGTERM] = (False, True)
        self._signal_actions[signal.SIGINT] = (False, True)

    def _create_worker(self):
        worker = super()._create_worker()
        worker.the_flip_consumer = self
        return worker

    def _count_task(self, signal_name, task, *args):
        if not isinstance(task, PeriodicTask):
            self.tasks_done += 1

    def _handle_signal(self, signum, frame):
        if signum in (signal.SIGTERM, signal.SIGINT):
            if not lifecycle.STOPPING.is_set():
                log.info(
                    "worker %s: %s received: stopping the running transcode, then exiting",
                    os.getpid(),
                    signal.Signals(signum).name,
                )
            lifecycle.STOPPING.set()
        super()._handle_signal(signum, frame)

    def recycle(self) -> None:
        """Called from the worker thread: finish nothing new, let the main loop stop us."""
        if lifecycle.DRAINING.is_set():
            return
        lifecycle.DRAINING.set()
        # supervisord counts an exit within `startsecs` as a failed start (and gives up after
        # a few): a process that happened to get through its tasks quickly waits a moment.
        remaining = self.min_lifetime - (time.monotonic() - self.started)
        if remaining > 0:
            self.stop_flag.wait(remaining)
        log.info(
            "worker %s: %d tasks done; exiting so a fresh process takes over",
            os.getpid(),
            self.tasks_done,
        )
        self._restart, self._graceful = False, True
        self._signum = signal.SIGUSR1  # any signal number: the main loop then stops gracefully
