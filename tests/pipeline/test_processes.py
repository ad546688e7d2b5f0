"""ffmpeg runs contained: limits, progress heartbeat, cancel, timeout, no leftovers."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from pathlib import Path

import pytest

from the_flip.media import Limits, MediaError, TranscodeCancelled, tool_versions, transcode


def children() -> list[str]:
    """Processes whose parent is this test process (zombies included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                found.append(stat)
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes():
    yield
    time.sleep(0.05)
    assert children() == []


def test_tool_versions_names_both_tools():
    versions = tool_versions()
    assert set(versions) == {"ffmpeg", "ffprobe"}
    assert all(re.match(r"\d", v) for v in versions.values())


def test_a_missing_ffmpeg_is_reported_clearly(clip, workdir):
    with pytest.raises(MediaError) as info:
        tool_versions(Limits(ffmpeg="/nonexistent/ffmpeg"))
    assert info.value.code == "ffmpeg_missing"
    with pytest.raises(MediaError) as info:
        transcode(clip("compatible.mp4"), workdir, limits=Limits(ffprobe="no-such-ffprobe"))
    assert info.value.code == "ffmpeg_missing"


def test_the_child_runs_with_rlimits_low_priority_and_its_own_session(tmp_path, workdir):
    report = tmp_path / "report.txt"
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(
        f"#!/bin/sh\n{{ cat /proc/self/limits; echo STAT $(cat /proc/$$/stat); }} > {report}\n"
        "echo 'ffmpeg version 9.9' \n"
    )
    fake.chmod(0o755)
    limits = Limits(
        ffmpeg=str(fake),
        address_space=3 * 1024**3,
        cpu_seconds=120,
        max_output_bytes=10**9,
        nice=7,
    )
    assert tool_versions(limits)["ffmpeg"] == "9.9"
    text = report.read_text()
    assert re.search(r"Max address space\s+3221225472\s+3221225472", text)
    assert re.search(r"Max cpu time\s+120\s+125", text)
    assert re.search(r"Max file size\s+1000000000\s+1000000000", text)
    assert re.search(r"Max core file size\s+0\s+0", text)
    stat = text.split("STAT ", 1)[1].rsplit(")", 1)[1].split()
    pid_ = int(text.split("STAT ", 1)[1].split()[0])
    assert int(stat[3]) == pid_, "session id == its own pid: start_new_session"
    assert int(stat[16]) == os.nice(0) + 7, "niceness raised by limits.nice"
    assert int(stat[38]) == os.SCHED_IDLE, "CPU only when the web has none to use"


def test_progress_is_a_once_a_second_heartbeat_from_0_to_100(clip, workdir):
    calls: list[tuple[float, int]] = []
    start = time.monotonic()
    transcode(
        clip("slow_to_convert.mp4"),
        workdir,
        on_progress=lambda pct: calls.append((time.monotonic() - start, pct)),
    )
    assert len(calls) >= 2
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert all(gap <= 2.0 for gap in gaps), gaps
    percents = [p for _, p in calls]
    assert percents == sorted(percents) and all(0 <= p <= 100 for p in percents)
    assert percents[-1] > 20


def test_cancel_kills_ffmpeg_within_a_second_and_leaves_nothing(clip, workdir):
    cancel = threading.Event()
    set_at: list[float] = []

    def fire():
        set_at.append(time.monotonic())
        cancel.set()

    threading.Timer(1.5, fire).start()
    with pytest.raises(TranscodeCancelled):
        transcode(clip("slow_to_convert.mp4"), workdir, cancel=cancel)
    assert time.monotonic() - set_at[0] < 1.0
    assert list(workdir.iterdir()) == []


def test_a_conversion_past_the_wall_clock_limit_is_killed(clip, workdir):
    # The up-front estimate is a lower bound (detailed footage costs more than it says), so
    # the timeout still has to stop what it lets through: here a machine it thinks is fast.
    start = time.monotonic()
    fast_looking = Limits(timeout=1.0, pixels_per_cpu_second=1e12)
    with pytest.raises(MediaError) as info:
        transcode(clip("slow_to_convert.mp4"), workdir, limits=fast_looking)
    assert time.monotonic() - start < 4
    assert (info.value.code, info.value.reason) == ("timeout", "Processing took too long.")


def test_too_little_memory_is_a_resources_error(clip, workdir):
    with pytest.raises(MediaError) as info:
        transcode(clip("h264_444.mp4"), workdir, limits=Limits(address_space=200 * 1024**2))
    assert info.value.code == "resources"


def test_an_output_over_the_file_size_limit_is_stopped(clip, workdir):
    with pytest.raises(MediaError) as info:
        transcode(clip("slow_to_convert.mp4"), workdir, limits=Limits(max_output_bytes=50_000))
    assert info.value.code == "output_too_large"
