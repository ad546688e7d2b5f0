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

from .spec import Limits

TAIL_BYTES = 4096
POLL = 0.05
# stderr lines that carry no information (ffmpeg 5.1 prints this for every JPEG poster)
NOISE = ("deprecated pixel format used",)


@dataclass
class Outcome:
    returncode: int
    stdout: bytes  # only kept when capture_stdout=True
    stderr_tail: str
    timed_out: bool = False
    elapsed: float = 0.0

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None


class Cancelled(Exception):
    pass


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


def run(
    cmd: list[str],
    limits: Limits,
    *,
    timeout: float,
    capture_stdout: bool = False,
    on_line: Callable[[str], None] | None = None,
    tick: Callable[[], None] | None = None,
    cancel: threading.Event | None = None,
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
    cmd = [binary, *cmd[1:]]
    start = time.monotonic()
    deadline = start + timeout
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    proc = subprocess.Popen(
        wrap(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_child(limits),
        close_fds=True,
    )
    err_chunks: collections.deque[bytes] = collections.deque()
    err_size = [0]
    out_chunks: list[bytes] = []

    def drain_err() -> None:
        assert proc.stderr is not None
        for chunk in iter(lambda: proc.stderr.read1(8192), b""):
            err_chunks.append(chunk)
            err_size[0] += len(chunk)
            while err_size[0] - len(err_chunks[0]) >= TAIL_BYTES * 4 and len(err_chunks) > 1:
                err_size[0] -= len(err_chunks.popleft())

    def drain_out() -> None:
        assert proc.stdout is not None
        pending = b""
        for chunk in iter(lambda: proc.stdout.read1(8192), b""):
            if capture_stdout:
                out_chunks.append(chunk)
            if on_line is not None:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    on_line(line.decode("utf-8", "replace").strip())

    readers = [
        threading.Thread(target=drain_err, daemon=True, name="ffmpeg-stderr"),
        threading.Thread(target=drain_out, daemon=True, name="ffmpeg-stdout"),
    ]
    for t in readers:
        t.start()
    timed_out = False
    try:
        while True:
            try:
                proc.wait(timeout=POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                proc.wait()
                raise Cancelled()
            if time.monotonic() > deadline:
                timed_out = True
                _kill_group(proc)
                proc.wait()
                break
            if tick is not None:
                tick()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        for t in readers:
            t.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    text = b"".join(err_chunks).decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines(keepends=True) if not any(n in ln for n in NOISE)]
    tail = "".join(lines)[-TAIL_BYTES:]
    return Outcome(
        returncode=proc.returncode,
        stdout=b"".join(out_chunks),
        stderr_tail=tail,
        timed_out=timed_out,
        elapsed=time.monotonic() - start,
    )
