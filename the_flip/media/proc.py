"""Run ffmpeg/ffprobe as a contained child process.

Every child gets, before it runs a single instruction of ffmpeg:

* its own session and process group (``start_new_session``), so a timeout or a
  cancel kills the whole group with ``os.killpg`` and nothing is orphaned;
* ``RLIMIT_AS``, ``RLIMIT_CPU`` (soft limit sends SIGXCPU, hard limit 5 s later
  SIGKILL), ``RLIMIT_FSIZE`` and ``RLIMIT_CORE=0``;
* ``os.nice(limits.nice)``, the ``SCHED_IDLE`` CPU policy when ``limits.idle_cpu``
  (the web always comes first), and, when the ``ionice`` binary exists, best-effort
  I/O class level 7 (``ionice -t`` ignores a refusal to set it);
* stdin from /dev/null.

stdout and stderr are drained by two reader threads, so a chatty child can never
block on a full pipe; the caller's thread only waits, checks the wall-clock
deadline and the cancel event every 50 ms, and reports progress once a second.
The child is always reaped (``wait``) before ``run`` returns or raises.
"""

from __future__ import annotations

import collections
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import STDERR_TAIL
from .spec import Limits

POLL = 0.05
# stderr lines that carry no information (ffmpeg 5.1 prints this for every JPEG poster)
NOISE = ("deprecated pixel format used",)


@dataclass
class Outcome:
    returncode: int
    stdout: bytes  # only kept when capture_stdout=True
    stderr_tail: str
    timed_out: bool = False

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None


class Cancelled(Exception):
    pass


class CancelFlag(Protocol):
    """What ``cancel`` must be: a ``threading.Event``, or anything else that says when to stop
    (the worker combines "the worker is stopping" with "this video is gone")."""

    def is_set(self) -> bool: ...


def _limit_child(limits: Limits) -> Callable[[], None]:
    # Runs in the forked child before exec: only plain syscalls, no imports, no locks.
    address_space = int(limits.address_space)
    cpu = int(limits.cpu_seconds)
    fsize = int(limits.max_output_bytes)
    nice = int(limits.nice)
    idle_cpu = bool(limits.idle_cpu)

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if address_space > 0:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        if cpu > 0:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        if fsize > 0:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if nice:
            os.nice(nice)
        if idle_cpu:  # a kernel or sandbox without SCHED_IDLE: nice alone still applies
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    return preexec


_IONICE = shutil.which("ionice")


def wrap(cmd: list[str]) -> list[str]:
    """Prefix ``ionice`` (best-effort, level 7) when available; ionice execs the command."""
    if _IONICE:
        return [_IONICE, "-c", "2", "-n", "7", "-t", *cmd]
    return cmd


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class _Drain:
    """Two reader threads: stdout (lines to ``on_line``, bytes kept if asked) and stderr (only
    its last few KB kept), so a chatty child can never block on a full pipe."""

    def __init__(self, proc: subprocess.Popen, capture_stdout: bool, on_line) -> None:
        self.proc = proc
        self.capture_stdout = capture_stdout
        self.on_line = on_line
        self.err_chunks: collections.deque[bytes] = collections.deque()
        self.err_size = 0
        self.out_chunks: list[bytes] = []
        self.threads = [
            threading.Thread(target=self._stderr, daemon=True, name="ffmpeg-stderr"),
            threading.Thread(target=self._stdout, daemon=True, name="ffmpeg-stdout"),
        ]
        for thread in self.threads:
            thread.start()

    def _stderr(self) -> None:
        pipe = self.proc.stderr
        assert pipe is not None
        for chunk in iter(lambda: pipe.read1(8192), b""):
            self.err_chunks.append(chunk)
            self.err_size += len(chunk)
            while self.err_size - len(self.err_chunks[0]) >= STDERR_TAIL * 4 and (
                len(self.err_chunks) > 1
            ):
                self.err_size -= len(self.err_chunks.popleft())

    def _stdout(self) -> None:
        pipe = self.proc.stdout
        assert pipe is not None
        pending = b""
        for chunk in iter(lambda: pipe.read1(8192), b""):
            if self.capture_stdout:
                self.out_chunks.append(chunk)
            if self.on_line is not None:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.on_line(line.decode("utf-8", "replace").strip())

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def stderr_tail(self) -> str:
        """The last STDERR_TAIL characters of stderr, without ffmpeg's noise lines."""
        text = b"".join(self.err_chunks).decode("utf-8", "replace")
        lines = [ln for ln in text.splitlines(keepends=True) if not any(n in ln for n in NOISE)]
        return "".join(lines)[-STDERR_TAIL:]


def _wait(proc: subprocess.Popen, deadline: float, cancel, tick) -> bool:
    """Wait for the child, polling the cancel event, the deadline and ``tick``; True when it
    was killed for running past the deadline. Raises Cancelled (child killed) on cancel."""
    while True:
        try:
            proc.wait(timeout=POLL)
            return False
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            _kill_group(proc)
            proc.wait()
            raise Cancelled()
        if time.monotonic() > deadline:
            _kill_group(proc)
            proc.wait()
            return True
        if tick is not None:
            tick()


def run(
    cmd: list[str],
    limits: Limits,
    *,
    timeout: float,
    capture_stdout: bool = False,
    on_line: Callable[[str], None] | None = None,
    tick: Callable[[], None] | None = None,
    cancel: CancelFlag | None = None,
) -> Outcome:
    """Run ``cmd`` contained; return its outcome (never raises for a non-zero exit).

    ``on_line`` gets each stdout line (reader thread); ``tick`` is called from the
    calling thread every poll interval (it may raise to abort the run: the child
    is killed first). Raises ``Cancelled`` when ``cancel`` is set, ``FileNotFoundError``
    when the binary is missing.
    """
    binary = shutil.which(cmd[0])
    if binary is None:
        raise FileNotFoundError(f"{cmd[0]}: not found or not executable")
    deadline = time.monotonic() + timeout
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    proc = subprocess.Popen(
        wrap([binary, *cmd[1:]]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_child(limits),
        close_fds=True,
    )
    drain = _Drain(proc, capture_stdout, on_line)
    try:
        timed_out = _wait(proc, deadline, cancel, tick)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        drain.close()
    return Outcome(
        returncode=proc.returncode,
        stdout=b"".join(drain.out_chunks),
        stderr_tail=drain.stderr_tail(),
        timed_out=timed_out,
    )
