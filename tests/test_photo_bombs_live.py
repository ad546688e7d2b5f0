"""Photo bombs against the running stack: supervisord, gunicorn (deploy/gunicorn.conf.py) and
the consumer as `make run` starts them. Three phones send 200 MP JPEGs (800 MB each if decoded
in full) while three attackers send 5 KB JPEGs claiming 14000 x 14000 pixels, all at once; the
gunicorn workers' memory is read from /proc every 20 ms throughout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.live_stack import Client, Stack
from tests.photo_files import bomb_jpeg, huge_jpeg
from the_flip import sizing

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("data")) as running:
        yield running


def test_three_phones_and_three_bombs_at_once_keep_the_web_processes_small(stack, tmp_path):
    phone = Client(stack.port)
    entry = phone.new_entry(phone.new_machine("Firepower")["id"])
    big = huge_jpeg(tmp_path / "20261201_101500.jpg", 16320, 12240).read_bytes()
    bomb = bomb_jpeg(tmp_path / "bomb.jpg").read_bytes()
    workers = [pid for pid in stack.pids("web")[1:]]  # [0] is the master
    assert workers
    # Warm every thread's Django up first, so the baseline is a serving worker's.
    small = huge_jpeg(tmp_path / "small.jpg", 640, 480).read_bytes()
    for _ in range(4):
        phone.post_files(
            f"/api/log-entries/{entry['id']}/media/", {}, [("file", "s.jpg", small, "image/jpeg")]
        )
    baseline = {pid: rss_mb(pid) for pid in workers}

    peaks = dict(baseline)
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            for pid in workers:
                peaks[pid] = max(peaks[pid], rss_mb(pid))
            time.sleep(0.02)

    answers: list[tuple[str, int, object]] = []

    def send(kind: str, name: str, content: bytes) -> None:
        status, body = Client(stack.port).post_files(
            f"/api/log-entries/{entry['id']}/media/", {}, [("file", name, content, "image/jpeg")]
        )
        answers.append((kind, status, body))

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [
        threading.Thread(target=send, args=(kind, f"{kind}_{i}.jpg", content))
        for i in range(3)
        for kind, content in (("phone", big), ("bomb", bomb))
    ]
    started = time.monotonic()
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(timeout=120)
    took = time.monotonic() - started
    time.sleep(0.5)
    sampling.set()
    sampler.join()
    after = {pid: rss_mb(pid) for pid in workers}

    growth = {pid: peaks[pid] - baseline[pid] for pid in workers}

    def mb(values: dict) -> list[int]:
        return sorted(round(v) for v in values.values())

    print(
        f"\n{len(workers)} gunicorn workers, {sizing.photo_decodes()} photo decode(s) each; "
        f"6 uploads in {took:.1f} s; worker RSS MB before {mb(baseline)}, peak {mb(peaks)}, "
        f"after {mb(after)}"
    )
    assert sorted(kind for kind, status, _ in answers if status == 201) == ["phone"] * 3, answers
    refused = [body for kind, status, body in answers if kind == "bomb"]
    assert len(refused) == 3 and all("far too small" in body["error"] for body in refused), answers
    # One decode of a 200 MP JPEG holds ~90 MB; without draft() it was ~800 MB, 2.4 GB for three.
    budget = sizing.photo_decodes() * sizing.PHOTO_DECODE_MB
    assert max(growth.values()) < budget, (growth, budget)
    assert max(after[pid] - baseline[pid] for pid in workers) < 120, (baseline, after)
