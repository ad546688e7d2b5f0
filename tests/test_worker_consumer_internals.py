"""The consumer's graceful stop and recycling lean on huey internals (huey 3.5 has no public
hook for "both SIGTERM and SIGINT are graceful" or "stop yourself, gracefully"):
consumer.py writes Consumer._signal_actions, _restart, _graceful and _signum. pyproject pins
huey to 3.5.x; this test fails first if an upgrade changes what those attributes mean. (The
real-process stories are in test_worker_faults.py.)"""

import signal

import pytest
from huey import MemoryHuey
from huey.consumer import ConsumerStopped

from the_flip.apps.worker import lifecycle
from the_flip.apps.worker.consumer import TheFlipConsumer


@pytest.fixture
def consumer():
    """A TheFlipConsumer on an in-memory huey; the process's signal handlers and the
    lifecycle flags are put back afterwards (huey installs its handlers at construction)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    consumer = TheFlipConsumer(
        MemoryHuey("internals", immediate=False), recycle_after=1, min_lifetime=0,
        workers=1, worker_type="thread", periodic=False, shutdown_timeout=5,
    )  # fmt: skip
    yield consumer
    consumer.stop_flag.set()
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    lifecycle.STOPPING.clear()
    lifecycle.DRAINING.clear()


def test_sigterm_and_sigint_are_both_graceful(consumer):
    assert consumer._signal_actions[signal.SIGTERM] == (False, True)  # (restart, graceful)
    assert consumer._signal_actions[signal.SIGINT] == (False, True)
    consumer._handle_signal(signal.SIGTERM, None)
    assert lifecycle.STOPPING.is_set(), "the running transcode is told to stop"
    assert (consumer._signum, consumer._restart, consumer._graceful) == (
        signal.SIGTERM,
        False,
        True,
    )


def test_recycling_stops_the_main_loop_gracefully_without_a_restart(consumer):
    consumer.start()
    consumer.recycle()
    assert lifecycle.DRAINING.is_set() and not lifecycle.STOPPING.is_set()
    with pytest.raises(ConsumerStopped):
        consumer.loop()
    assert consumer.stop_flag.is_set()
    assert not consumer._restart, "exit, so supervisord starts a fresh process (no re-exec)"
