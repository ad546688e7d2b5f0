"""How big this machine is, and how much of it each part of the_flip may take.

Plain Python (no Django): gunicorn's config file, the settings and the benchmarks all read it.

**What the machine is.** The CPUs and memory this process can really use: the cgroup's
limits when a container runtime set them (cgroup v2 ``cpu.max`` / ``memory.max``, v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` / ``memory.limit_in_bytes``, the smallest along
the path to the root), within the CPUs of this process's affinity mask and the host's RAM
(``/proc/meminfo``) -- which is all a Fly.io or Railway VM shows: ``shared-cpu-1x`` is one
vCPU and about 1 GB of ``MemTotal``. ``docker run --cpus 1`` leaves both cores in the
affinity mask but a quota of one CPU, so the quota decides.

**What follows from it** (each overridable by its environment variable):

* Memory comes first. One transcode at a time (the worker) is reserved
  ``TRANSCODE_RESERVE_MB``: ffmpeg's measured peak on the largest input we accept, a 4K
  10-bit HLG phone clip, plus the consumer process. ``BASE_MB`` is supervisord, nginx and
  gunicorn's master. What is left feeds web processes, each ``WEB_PROCESS_MB`` plus one
  photo decode (``PHOTO_DECODE_MB``, the peak of the largest photo we accept; see
  ``maintenance/photos.py``).
* ``WEB_CONCURRENCY`` (gunicorn workers): one per CPU while that memory lasts, at least 1.
  A page request is short and mostly waits on the database and the disk, so more processes
  than CPUs buy nothing, and behind nginx a slow phone holds an nginx connection, not a
  gunicorn thread.
* ``GUNICORN_THREADS``: the site answers ``WEB_REQUESTS`` (16) requests at once whatever the
  number of processes (fly.toml's soft limit is 16), so threads = 16 / workers, at least 4.
* ``PHOTO_DECODES`` (per web process, a semaphore in ``maintenance/photos.py``): the photo
  decodes the memory left after the web processes pays for, 1 or 2.
* ``TRANSCODE_CPUS``: the CPUs the pipeline sizes ffmpeg's threads for
  (``the_flip.media.plan.thread_counts``): the CPU quota rounded up, within the affinity mask.
  At one CPU x264 runs one thread (its own 1.5 x rule), which also saves a frame thread's
  memory.
* ``TRANSCODE_LARGE_LOOKAHEAD``: x264's ``rc-lookahead`` for outputs above 1080p: 20, or 10
  below 1.5 GiB of memory (-100 MB on a 4K clip, so it fits beside a 50 MP photo decode in
  1 GB; cost in docs/benchmarks.md, "Small machine"). crf, preset and profile never change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MIB = 1024 * 1024

# The memory budget, in MiB (measured: docs/benchmarks.md "Small machine", docs/security.md
# "Photos"). On 1 GB it gives 1 web process, 1 photo decode and lookahead 10, and
# tests/test_small_machine.py proves the worst case fits (peak 854 MB anonymous); from about
# 1.4 GiB up the same sums allow more, each side by side with one 4K transcode.
TRANSCODE_RESERVE_MB = 680  # ffmpeg on a 4K 10-bit HLG clip (606 MB at lookahead 20) + consumer
BASE_MB = 80  # supervisord, nginx, gunicorn's master
WEB_PROCESS_MB = 90  # one gunicorn worker with Django loaded, after some requests
PHOTO_DECODE_MB = 250  # one photo at the pixel budget: a 50 MP PNG peaks at 247 MB
WEB_REQUESTS = 16  # requests the site serves at once, over all gunicorn workers
MAX_WEB_PROCESSES = 8
MAX_PHOTO_DECODES = 2
# x264's rc-lookahead for outputs above 1080p (each frame ~10 MB at 2400x1350): 20, or 10 on a
# machine under 1.5 GiB, where a 4K transcode and a large photo must fit side by side.
LOOKAHEAD = 20
SMALL_LOOKAHEAD = 10
SMALL_MEMORY_MB = 1536

PROC_SELF = Path("/proc/self")
MEMINFO = Path("/proc/meminfo")
# A v1 memory limit at or above this means "no limit" (the kernel reports 2^63 rounded to a page).
UNLIMITED = 1 << 60


@dataclass(frozen=True)
class Machine:
    """What this process may use: CPUs (may be fractional, from a quota) and memory bytes."""

    cpus: float
    memory_bytes: int
    cpu_source: str  # where the CPU number comes from, for logs and the benchmark
    memory_source: str

    @property
    def whole_cpus(self) -> int:
        """The CPUs to size threads and processes for: the quota rounded up, at least 1."""
        return max(1, math.ceil(self.cpus - 0.01))

    @property
    def memory_mb(self) -> int:
        return self.memory_bytes // MIB

    def describe(self) -> str:
        return f"{self.cpus:g} CPU ({self.cpu_source}), {self.memory_mb} MiB ({self.memory_source})"


# --- reading the limits ----------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str, proc_self: Path) -> list[Path]:
    """This process's cgroup directory for ``controller`` ("" = v2) and its ancestors.

    /proc/self/cgroup gives the path inside the hierarchy, /proc/self/mountinfo where that
    hierarchy is mounted and which of its directories the mount shows (in a container the
    mount's root usually *is* our cgroup). Own directory first, the mount point last.
    """
    path_in_hierarchy = None
    for line in (_read(proc_self / "cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):  # "" matches the v2 line "0::/path"
            path_in_hierarchy = path
            break
    for line in (_read(proc_self / "mountinfo") or "").splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[-1].split(",")
        if (controller == "" and fstype == "cgroup2") or (
            controller and fstype == "cgroup" and controller in options
        ):
            mount_root, mount = fields[3], Path(fields[4])
            break
    else:
        return []
    dirs = [mount]
    if path_in_hierarchy is not None:
        relative = os.path.relpath(path_in_hierarchy, mount_root)
        if not relative.startswith(".."):
            here = mount / relative
            while here != mount and mount in here.parents:
                dirs.insert(-1, here)
                here = here.parent
    return [d for d in dirs if d.is_dir()]


def cgroup_cpu_quota(proc_self: Path = PROC_SELF) -> tuple[float, str] | None:
    """CPUs' worth of time per period the cgroup allows (the smallest on the path), or None."""
    quotas: list[tuple[float, str]] = []
    for directory in _cgroup_dirs("", proc_self):
        value = _read(directory / "cpu.max")  # "max 100000" or "150000 100000"
        if value and not value.startswith("max"):
            quota, period = value.split()[:2]
            quotas.append((int(quota) / int(period), "cgroup v2 cpu.max"))
    for directory in _cgroup_dirs("cpu", proc_self):
        quota = _read(directory / "cpu.cfs_quota_us")
        period = _read(directory / "cpu.cfs_period_us")
        if quota and period and int(quota) > 0 and int(period) > 0:
            quotas.append((int(quota) / int(period), "cgroup v1 cpu.cfs_quota_us"))
    return min(quotas) if quotas else None


def cgroup_memory_limit(proc_self: Path = PROC_SELF) -> tuple[int, str] | None:
    """The cgroup's memory limit in bytes (the smallest on the path), or None."""
    limits: list[tuple[int, str]] = []
    for directory in _cgroup_dirs("", proc_self):
        value = _read(directory / "memory.max")
        if value and value != "max":
            limits.append((int(value), "cgroup v2 memory.max"))
    for directory in _cgroup_dirs("memory", proc_self):
        value = _read(directory / "memory.limit_in_bytes")
        if value and int(value) < UNLIMITED:
            limits.append((int(value), "cgroup v1 memory.limit_in_bytes"))
    return min(limits) if limits else None


def affinity_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def host_memory_bytes(meminfo: Path = MEMINFO) -> int:
    """The host's (or VM's) RAM: MemTotal from /proc/meminfo, else the page count."""
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1024 * MIB


def read_machine(
    proc_self: Path = PROC_SELF, meminfo: Path = MEMINFO, affinity: int | None = None
) -> Machine:
    """The CPUs and memory this process may use: cgroup limits within affinity and RAM."""
    cpus, cpu_source = float(affinity or affinity_cpus()), "affinity"
    quota = cgroup_cpu_quota(proc_self)
    if quota is not None and quota[0] < cpus:
        cpus, cpu_source = quota
    memory, memory_source = host_memory_bytes(meminfo), "MemTotal"
    limit = cgroup_memory_limit(proc_self)
    if limit is not None and limit[0] < memory:
        memory, memory_source = limit
    return Machine(cpus, memory, cpu_source, memory_source)


@cache
def machine() -> Machine:
    """This process's machine, read once (the limits do not change while it runs)."""
    return read_machine()


# --- what follows from it --------------------------------------------------------------------


def env_int(name: str, default: int | None = None, *, strict: bool = True) -> int | None:
    """A whole number from the environment (settings read theirs with it too); unset or
    blank: ``default``. Not a number: an error naming the variable (``strict``), else
    ``default`` (here: the derived size)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        if strict:
            raise ValueError(f"{name} must be a whole number, not {value!r}") from None
        return default


def _free_for_web_mb(m: Machine) -> int:
    return m.memory_mb - TRANSCODE_RESERVE_MB - BASE_MB


def web_processes(m: Machine | None = None, *, strict: bool = True) -> int:
    """gunicorn workers: one per CPU while each has room for itself and one photo decode."""
    if (override := env_int("WEB_CONCURRENCY", strict=strict)) is not None:
        return max(1, override)
    m = m or machine()
    by_memory = _free_for_web_mb(m) // (WEB_PROCESS_MB + PHOTO_DECODE_MB)
    return max(1, min(m.whole_cpus, by_memory, MAX_WEB_PROCESSES))


def web_threads(m: Machine | None = None) -> int:
    """gunicorn threads per worker: WEB_REQUESTS over all workers, at least 4 each."""
    if (override := env_int("GUNICORN_THREADS")) is not None:
        return max(1, override)
    return max(4, WEB_REQUESTS // web_processes(m))


def photo_decodes(m: Machine | None = None) -> int:
    """Photo decodes at once per web process: what the memory left after the web pays for."""
    if (override := env_int("PHOTO_DECODES")) is not None:
        return max(1, override)
    m = m or machine()
    # Not strict: a bad WEB_CONCURRENCY is gunicorn's to refuse (it goes FATAL and says why),
    # not a reason for every manage.py command and the worker to fail too.
    processes = web_processes(m, strict=False)
    left = _free_for_web_mb(m) - processes * WEB_PROCESS_MB
    return max(1, min(MAX_PHOTO_DECODES, left // (processes * PHOTO_DECODE_MB)))


def transcode_cpus(m: Machine | None = None) -> int:
    """CPUs ffmpeg's threads are sized for: the CPU quota rounded up, within the affinity."""
    if (override := env_int("TRANSCODE_CPUS")) is not None:
        return max(1, override)
    return (m or machine()).whole_cpus


def large_rc_lookahead(m: Machine | None = None) -> int:
    """x264's lookahead above 1080p: 20, or 10 where memory is under SMALL_MEMORY_MB."""
    if (override := env_int("TRANSCODE_LARGE_LOOKAHEAD")) is not None:
        return max(1, override)
    m = m or machine()
    return SMALL_LOOKAHEAD if m.memory_mb < SMALL_MEMORY_MB else LOOKAHEAD


def summary(m: Machine | None = None) -> str:
    """One line for logs: the machine and what was derived from it."""
    m = m or machine()
    return (
        f"{m.describe()}: {web_processes(m)} web processes x {web_threads(m)} threads, "
        f"{photo_decodes(m)} photo decode(s) per process, ffmpeg sized for "
        f"{transcode_cpus(m)} CPU(s), 4K lookahead {large_rc_lookahead(m)}"
    )
