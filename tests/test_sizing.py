"""The operator runs the_flip on whatever machine they pay for; it sizes itself to fit.

The CPUs and memory come from the cgroup a container runtime set (v1 or v2), else from the
VM itself; gunicorn, the photo decodes and ffmpeg follow, each overridable by its variable.
Fake /proc and /sys trees stand in for the machines we cannot be (the real one is read too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from the_flip import sizing
from the_flip.sizing import Machine

GIB = 1024**3


def fake_proc(tmp_path: Path, cgroup: str, mounts: list[tuple[str, str, str, str]]) -> Path:
    """/proc/self with a cgroup file and a mountinfo listing (root, mount point, fstype, opts)."""
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    lines = [
        f"{30 + i} 23 0:{28 + i} {root} {point} rw,relatime - {fstype} {fstype} rw,{opts}"
        for i, (root, point, fstype, opts) in enumerate(mounts)
    ]
    (proc / "mountinfo").write_text("\n".join(lines) + "\n")
    return proc


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def meminfo(tmp_path: Path, mib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {mib * 1024} kB\nMemFree:        1000 kB\n")
    return path


def test_docker_cpus_1_memory_1g_on_cgroup_v2_is_the_smallest_paid_machine(tmp_path):
    cg = tmp_path / "sys" / "fs" / "cgroup"
    write(cg / "cpu.max", "100000 100000")
    write(cg / "memory.max", str(1 * GIB))
    proc = fake_proc(tmp_path, "0::/\n", [("/", str(cg), "cgroup2", "nsdelegate")])
    m = sizing.read_machine(proc, meminfo(tmp_path, 24_000), affinity=2)
    assert (m.cpus, m.memory_mb) == (1.0, 1024)
    assert (m.cpu_source, m.memory_source) == ("cgroup v2 cpu.max", "cgroup v2 memory.max")
    assert sizing.web_processes(m) == 1
    assert sizing.web_threads(m) == 16
    assert sizing.photo_decodes(m) == 1
    assert sizing.transcode_cpus(m) == 1  # both cores are in the affinity mask; the quota wins
    assert sizing.large_rc_lookahead(m) == 10


def test_a_cgroup_v1_limit_on_a_parent_directory_counts(tmp_path):
    """Like this CI host: our cgroup is /process_api/<id>, the limit sits on /process_api."""
    mem, cpu = tmp_path / "cg" / "memory", tmp_path / "cg" / "cpu"
    write(mem / "memory.limit_in_bytes", "9223372036854771712")  # the root: no limit
    write(mem / "box" / "memory.limit_in_bytes", str(2 * GIB))
    write(mem / "box" / "abc" / "memory.limit_in_bytes", "9223372036854771712")
    write(cpu / "box" / "abc" / "cpu.cfs_quota_us", "150000")
    write(cpu / "box" / "abc" / "cpu.cfs_period_us", "100000")
    proc = fake_proc(
        tmp_path,
        "5:memory:/box/abc\n1:cpu,cpuacct:/box/abc\n0::/\n",
        [("/", str(mem), "cgroup", "memory"), ("/", str(cpu), "cgroup", "cpu,cpuacct")],
    )
    m = sizing.read_machine(proc, meminfo(tmp_path, 24_000), affinity=4)
    assert (m.cpus, m.memory_mb) == (1.5, 2048)
    assert m.memory_source == "cgroup v1 memory.limit_in_bytes"
    assert m.whole_cpus == 2
    assert (sizing.web_processes(m), sizing.web_threads(m)) == (2, 8)
    assert sizing.large_rc_lookahead(m) == 20


def test_a_docker_cgroup_v1_mount_shows_our_own_directory_as_its_root(tmp_path):
    mem = tmp_path / "cg" / "memory"
    write(mem / "memory.limit_in_bytes", str(1 * GIB))
    proc = fake_proc(
        tmp_path,
        "4:memory:/docker/0123abcd\n",
        [("/docker/0123abcd", str(mem), "cgroup", "memory")],
    )
    m = sizing.read_machine(proc, meminfo(tmp_path, 24_000), affinity=2)
    assert m.memory_mb == 1024 and m.cpus == 2.0


def test_a_vm_without_cgroup_limits_is_sized_from_its_own_cpus_and_ram(tmp_path):
    """Fly.io's shared-cpu-1x: one vCPU, about 1 GB of MemTotal, no container limits."""
    proc = fake_proc(tmp_path, "0::/\n", [])
    m = sizing.read_machine(proc, meminfo(tmp_path, 985), affinity=1)
    assert (m.cpus, m.memory_mb, m.cpu_source, m.memory_source) == (
        1.0,
        985,
        "affinity",
        "MemTotal",
    )
    assert (sizing.web_processes(m), sizing.photo_decodes(m), sizing.large_rc_lookahead(m)) == (
        1,
        1,
        10,
    )


def test_bigger_machines_get_more_web_processes_and_photo_decodes_within_bounds():
    four = Machine(4.0, 8 * GIB, "affinity", "MemTotal")
    assert sizing.web_processes(four) == 4
    assert sizing.web_threads(four) == 4
    assert sizing.photo_decodes(four) == 2
    assert sizing.transcode_cpus(four) == 4
    many_cpus_little_memory = Machine(8.0, 2 * GIB, "affinity", "MemTotal")
    assert sizing.web_processes(many_cpus_little_memory) == 3  # memory, not CPUs, decides


@pytest.mark.parametrize(
    ("variable", "value", "function", "expected"),
    [
        ("WEB_CONCURRENCY", "3", sizing.web_processes, 3),
        ("GUNICORN_THREADS", "5", sizing.web_threads, 5),
        ("PHOTO_DECODES", "2", sizing.photo_decodes, 2),
        ("TRANSCODE_CPUS", "2", sizing.transcode_cpus, 2),
        ("TRANSCODE_LARGE_LOOKAHEAD", "40", sizing.large_rc_lookahead, 40),
    ],
)
def test_every_derived_size_is_overridden_by_its_variable(
    monkeypatch, variable, value, function, expected
):
    monkeypatch.setenv(variable, value)
    assert function(Machine(1.0, 1 * GIB, "affinity", "MemTotal")) == expected


def test_this_machine_is_read_and_summarised_for_the_log():
    m = sizing.machine()
    assert m.cpus >= 1 or m.cpu_source.startswith("cgroup")
    assert m.memory_bytes > 64 * 1024 * 1024
    assert "web processes" in sizing.summary(m) and "MiB" in sizing.summary(m)


def test_a_bad_override_is_named_by_gunicorn_and_ignored_elsewhere(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    one_gb = Machine(1.0, 1 * GIB, "affinity", "MemTotal")
    with pytest.raises(ValueError, match="WEB_CONCURRENCY must be a whole number, not 'lots'"):
        sizing.web_processes(one_gb)  # gunicorn.conf.py: the web program goes FATAL
    assert sizing.photo_decodes(one_gb) == 1  # settings (manage.py, the worker) still load
