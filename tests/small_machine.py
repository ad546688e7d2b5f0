"""The worst we accept, on the smallest machine: the image under ``docker run --cpus C --memory M
--memory-swap M`` (no swap), while a maintainer uses the pages.

One scenario, shared by ``tests/test_small_machine.py`` (1 CPU / 1 GB, asserted) and
``bench/small_machine.py`` (1 CPU / 1 GB and 2 CPU / 2 GB side by side, docs/benchmarks.md):

1. idle: the log entry page is fetched every 100 ms for ``idle_seconds``;
2. busy: a 4K 10-bit HLG iPhone clip and a 4K 60 fps clip are uploaded; while the first
   transcodes (from 20 % on, when ffmpeg holds the most), a 200 MP phone JPEG and a 50 MP PNG
   (the largest photo decode we accept) are uploaded and another upload (60 MB) streams in at
   phone speed; the page is still fetched every 100 ms until both videos are ready.

The container's memory is read from its cgroup on the host every 100 ms (``memory.stat``:
anonymous memory, the part that cannot be reclaimed; plus the cgroup's own peak with page
cache), and the OOM kills from the cgroup's counters and ``docker inspect``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.clips import ffmpeg, iphone_hevc_mov
from tests.photo_files import huge_jpeg
from tests.test_container import PASSWORD, USERNAME, Browser, docker, free_port

MB = 1024 * 1024


# --- media --------------------------------------------------------------------------------------


def make_media(folder: Path, seconds: float) -> dict[str, Path]:
    """The clips and photos (generated once per folder), named like a phone names them."""
    folder.mkdir(parents=True, exist_ok=True)
    media = {
        "hlg": folder / f"IMG_4K_HLG_{seconds:g}s.MOV",
        "4k60": folder / f"VID_4K60_{seconds:g}s.mp4",
        "jpeg200": folder / "20261201_120000.jpg",
        "png50": folder / "Screenshot_50MP.png",
    }
    if not media["hlg"].exists():
        iphone_hevc_mov(media["hlg"], size="3840x2160", seconds=seconds)
    if not media["4k60"].exists():
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=60",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(media["4k60"]),
        )  # fmt: skip
    if not media["jpeg200"].exists():
        huge_jpeg(media["jpeg200"], 16320, 12240)
    if not media["png50"].exists():
        from PIL import Image

        Image.new("RGB", (8160, 6120), (20, 90, 160)).save(media["png50"])
    return media


CONTENT_TYPES = {".mov": "video/quicktime", ".mp4": "video/mp4", ".jpg": "image/jpeg",
                 ".png": "image/png"}  # fmt: skip


def post_file(browser: Browser, path: str, file: Path) -> tuple[int, dict]:
    boundary = "----small-" + uuid.uuid4().hex
    content_type = CONTENT_TYPES[file.suffix.lower()]
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{file.name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + file.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, data = browser.request(
        "POST", path, body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"},
    )  # fmt: skip
    return status, json.loads(data)


def stream_upload(browser: Browser, path: str, size: int, rate: float) -> int:
    """A phone's upload of ``size`` bytes at ``rate`` bytes/s (random bytes named .MOV)."""
    boundary = "----small-" + uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="IMG_9000.MOV"\r\nContent-Type: video/quicktime\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    block = secrets.token_bytes(256 * 1024)

    def chunks():
        yield head
        sent, started = 0, time.monotonic()
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            yield piece
            sent += len(piece)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        yield tail

    request = urllib.request.Request(
        browser.base + path,
        data=chunks(),
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
            "X-CSRFToken": browser.cookie("csrftoken"),
            "Referer": browser.base + "/",
            "Accept": "application/json",
        },
    )
    try:
        with browser.opener.open(request, timeout=300) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- the container and its cgroup ----------------------------------------------------------------


def cgroup_dir(container_id: str) -> Path | None:
    """The container's memory cgroup on this host (v1 or v2, cgroupfs or systemd driver)."""
    patterns = [
        f"/sys/fs/cgroup/memory/docker/{container_id}",
        f"/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope",
        f"/sys/fs/cgroup/docker/{container_id}",
        f"/sys/fs/cgroup/**/*{container_id}*",
    ]
    for pattern in patterns:
        for found in glob.glob(pattern, recursive=True):
            path = Path(found)
            if (path / "memory.stat").exists():
                return path
    return None


def memory_stat(cgroup: Path) -> dict[str, int]:
    stat = {}
    for line in (cgroup / "memory.stat").read_text().splitlines():
        key, value = line.split()
        stat[key] = int(value)
    return stat


def anon_bytes(stat: dict[str, int]) -> int:
    """Anonymous memory: v2 ``anon``; v1 ``total_rss`` (``rss`` without hierarchy)."""
    return stat.get("anon", stat.get("total_rss", stat.get("rss", 0)))


def peak_bytes(cgroup: Path) -> int:
    """The cgroup's own peak (anonymous + page cache): v2 memory.peak, v1 max_usage_in_bytes."""
    for name in ("memory.peak", "memory.max_usage_in_bytes"):
        if (cgroup / name).exists():
            return int((cgroup / name).read_text().split()[0])
    return 0


def cpu_seconds(container_id: str, memory_cgroup: Path) -> float:
    """CPU time the container has used: v2 cpu.stat (same directory), v1 cpuacct.usage."""
    stat = memory_cgroup / "cpu.stat"
    if stat.exists():
        for line in stat.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    for hierarchy in ("cpuacct", "cpu,cpuacct"):
        for parent in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
            usage = Path(f"/sys/fs/cgroup/{hierarchy}/{parent}/cpuacct.usage")
            if usage.exists():
                return int(usage.read_text()) / 1e9
    return float("nan")


def oom_kills(cgroup: Path) -> int:
    for name in ("memory.events", "memory.oom_control"):
        if (cgroup / name).exists():
            for line in (cgroup / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    return 0


@dataclass
class Report:
    cpus: str
    memory: str
    extra_env: dict[str, str] = field(default_factory=dict)
    web_sizing: str = ""
    transcode_seconds: dict[str, float] = field(default_factory=dict)
    video_status: dict[str, str] = field(default_factory=dict)
    photo_status: dict[str, int] = field(default_factory=dict)
    streamed_status: int = 0
    page_idle_ms: list[float] = field(default_factory=list)
    page_busy_ms: list[float] = field(default_factory=list)
    pages_failed: list[str] = field(default_factory=list)
    idle_anon_mb: float = 0.0
    peak_anon_mb: float = 0.0
    peak_with_cache_mb: float = 0.0
    oom_kills: int = 0
    oom_killed: bool = False
    busy_seconds: float = 0.0
    busy_cpu_seconds: float = 0.0  # the container's CPU time while busy (stable on a busy host)

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    def lines(self) -> list[str]:
        p = self.percentile
        return [
            f"machine: --cpus {self.cpus} --memory {self.memory} {self.extra_env or ''}; "
            f"{self.web_sizing}",
            "transcode (processing -> ready): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.transcode_seconds.items()),
            f"videos {self.video_status}; photos {self.photo_status}; "
            f"streamed upload {self.streamed_status}",
            f"page p50/p99 idle {p(self.page_idle_ms, 50):.0f}/{p(self.page_idle_ms, 99):.0f} ms "
            f"({len(self.page_idle_ms)}), busy {p(self.page_busy_ms, 50):.0f}/"
            f"{p(self.page_busy_ms, 99):.0f} ms ({len(self.page_busy_ms)} over "
            f"{self.busy_seconds:.0f} s, {self.busy_cpu_seconds:.0f} CPU-s used), "
            f"failed {len(self.pages_failed)}",
            f"container anonymous memory idle {self.idle_anon_mb:.0f} MB, "
            f"peak {self.peak_anon_mb:.0f} MB "
            f"(cgroup peak with page cache {self.peak_with_cache_mb:.0f} MB); "
            f"OOM kills {self.oom_kills}, OOMKilled {self.oom_killed}",
        ]


class PageWatcher(threading.Thread):
    """A maintainer with the log entry page open: one GET every 100 ms, timing each."""

    def __init__(self, browser: Browser, path: str, into: list[float], failed: list[str]):
        super().__init__(daemon=True)
        self.browser, self.path, self.into, self.failed = browser, path, into, failed
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status, _, body = self.browser.request("GET", self.path)
                if status != 200:
                    self.failed.append(f"{status} {body[:100]!r}")
            except OSError as error:
                self.failed.append(str(error))
            took = time.monotonic() - started
            self.into.append(took * 1000)
            self.stopping.wait(max(0.0, 0.1 - took))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def run_scenario(
    image: str,
    media: dict[str, Path],
    cpus: str,
    memory: str,
    idle_seconds: float = 8,
    extra_env: dict[str, str] | None = None,
) -> Report:
    """Run the whole scenario once on a fresh volume; the container is removed afterwards."""
    report = Report(cpus=cpus, memory=memory, extra_env=dict(extra_env or {}))
    volume = f"the-flip-small-{uuid.uuid4().hex[:8]}"
    name = f"the-flip-small-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    docker("volume", "create", volume)
    env = {
        "PORT": str(port),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        **(extra_env or {}),
    }
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    try:
        container_id = docker(
            "run", "-d", "--name", name, "--network", "host", "--cpus", cpus,
            "--memory", memory, "--memory-swap", memory, "-v", f"{volume}:/data", *env_args, image,
        ).stdout.strip()  # fmt: skip
        cgroup = cgroup_dir(container_id)
        assert cgroup is not None, f"no memory cgroup found for container {container_id}"
        peak_anon = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                with contextlib.suppress(OSError):
                    peak_anon[0] = max(peak_anon[0], anon_bytes(memory_stat(cgroup)))
                sampling.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _wait_healthy(base, name)
        logs = docker("logs", name, check=False)
        report.web_sizing = next(
            (line.split("sizing: ", 1)[1] for line in (logs.stdout + logs.stderr).splitlines()
             if "sizing: " in line), "",
        )  # fmt: skip

        browser = Browser(base)
        browser.login(USERNAME, PASSWORD)
        status, machine = browser.json("POST", "/api/machines/", {"name": "Twilight Zone"})
        assert status == 201, machine
        status, entry = _new_entry(browser, machine["id"])
        page = entry["page_url"]

        idle = PageWatcher(browser, page, report.page_idle_ms, report.pages_failed)
        idle.start()
        time.sleep(idle_seconds)
        idle.stop()
        report.idle_anon_mb = anon_bytes(memory_stat(cgroup)) / MB

        busy = PageWatcher(browser, page, report.page_busy_ms, report.pages_failed)
        busy_started = time.monotonic()
        cpu_before = cpu_seconds(container_id, cgroup)
        busy.start()
        videos = {}
        for key in ("hlg", "4k60"):
            status, item = post_file(browser, f"/api/log-entries/{entry['id']}/media/", media[key])
            assert status == 201, item
            videos[key] = item["url"]

        def photos_and_stream() -> None:
            # ffmpeg's memory peaks once x264's lookahead is full: a fifth of the way in.
            _wait_for(browser, videos["hlg"], min_progress=20, timeout=300)
            streamer = threading.Thread(
                target=lambda: setattr(
                    report, "streamed_status",
                    stream_upload(browser, f"/api/log-entries/{entry['id']}/media/", 60 * MB,
                                  rate=6 * MB),
                ),
            )  # fmt: skip
            streamer.start()
            for key in ("jpeg200", "png50"):
                status, _ = post_file(browser, f"/api/log-entries/{entry['id']}/media/", media[key])
                report.photo_status[key] = status
            streamer.join(timeout=300)

        side = threading.Thread(target=photos_and_stream, daemon=True)
        side.start()
        started_processing: dict[str, float] = {}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(report.video_status) < len(videos):
            for key, url in videos.items():
                if key in report.video_status:
                    continue
                status, item = browser.json("GET", url)
                if status != 200:
                    continue
                if item["status"] == "processing":
                    started_processing.setdefault(key, time.monotonic())
                if item["status"] in {"ready", "failed"}:
                    report.video_status[key] = item["status"]
                    began = started_processing.get(key, time.monotonic())
                    report.transcode_seconds[key] = time.monotonic() - began
            time.sleep(0.25)
        side.join(timeout=300)
        busy.stop()
        report.busy_seconds = time.monotonic() - busy_started
        report.busy_cpu_seconds = cpu_seconds(container_id, cgroup) - cpu_before

        sampling.set()
        sampler.join(timeout=5)
        report.peak_anon_mb = peak_anon[0] / MB
        report.peak_with_cache_mb = peak_bytes(cgroup) / MB
        report.oom_kills = oom_kills(cgroup)
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        report.oom_killed = bool(state.get("OOMKilled"))
        return report
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def _new_entry(browser: Browser, machine_id: int) -> tuple[int, dict]:
    boundary = "----small-" + uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="machine"\r\n\r\n{machine_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'
        f"Ball trough jams; clips of the problem and photos of the board.\r\n--{boundary}--\r\n"
    ).encode()
    status, _, data = browser.request(
        "POST", "/api/log-entries/", body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"},
    )  # fmt: skip
    assert status == 201, data
    return status, json.loads(data)


def _wait_for(browser: Browser, url: str, min_progress: int, timeout: float) -> dict:
    """Until the video is processing with at least ``min_progress`` %, or done."""
    deadline = time.monotonic() + timeout
    item: dict = {}
    while time.monotonic() < deadline:
        status, item = browser.json("GET", url)
        if status == 200 and (
            item["status"] in {"ready", "failed"}
            or (item["status"] == "processing" and (item["progress"] or 0) >= min_progress)
        ):
            return item
        time.sleep(0.1)
    return item


def _wait_healthy(base: str, name: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.2)
    logs = docker("logs", name, check=False)
    raise AssertionError(f"never healthy:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
