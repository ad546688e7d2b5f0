"""Memory and disk cost of big uploads on the web side.

Starts the app as `make run` does (supervisord: gunicorn + consumer) on a temp DATA_DIR, then
1. streams a 200 MB upload (generated on the fly, never in the client's memory) to
   POST /api/log-entries/<id>/media/ while sampling every gunicorn worker's RSS;
2. declares a 2 GB upload, sends 1 MB of it, and reads the answer (413 expected), checking
   that DATA_DIR did not grow.
Targets: worker RSS growth ≤ 30 MB; the 2 GB refusal early and free. Writes
bench/out/upload_memory.json.

    .venv/bin/python bench/upload_memory.py [--mb 200]
"""

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_stack import Client, Stack, streamed_upload  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1000 * 1000


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the big upload (MB)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="the_flip_bench_") as data, Stack(Path(data)) as app:
        data_dir = Path(data)
        phone = Client(app.port)
        _, machine = phone.request(
            "POST", "/api/machines/", body='{"name": "Medieval Madness"}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        _, entry = phone.post_files("/api/log-entries/", {"machine": machine["id"]}, [])
        path = f"/api/log-entries/{entry['id']}/media/"
        # Warm every worker thread up with small requests first, so the baseline includes
        # Django's imports and one request's worth of everything.
        for _ in range(30):
            phone.request("GET", "/api/machines/")
            phone.post_files(path, {}, [("file", "warm.mp4", b"\0" * 50_000, "video/mp4")])
        time.sleep(1)

        workers = app.pids("web")[1:]  # [0] is the gunicorn master
        before = {pid: rss_kb(pid) for pid in workers}
        peak = dict(before)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for pid in workers:
                    peak[pid] = max(peak[pid], rss_kb(pid))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        status, body, _sent = streamed_upload(phone, path, "IMG_BIG.MOV", args.mb * MB)
        upload_seconds = time.monotonic() - started
        time.sleep(1)
        stop.set()
        sampler.join()
        after = {pid: rss_kb(pid) for pid in workers}
        assert status == 201, body
        stored_mb = disk_bytes(data_dir / "media") / MB  # the original, kept until processed

        # The 2 GB upload: declared, barely sent, refused.
        disk_before = disk_bytes(data_dir / "media") + disk_bytes(data_dir / "tmp")
        started = time.monotonic()
        big_status, big_body, big_sent = streamed_upload(
            phone, path, "IMG_HUGE.MOV", 2 * 1024**3, send_at_most=1024 * 1024
        )
        refusal_ms = (time.monotonic() - started) * 1000
        disk_after = disk_bytes(data_dir / "media") + disk_bytes(data_dir / "tmp")

    growth = {pid: (peak[pid] - before[pid]) / 1024 for pid in workers}
    result = {
        "upload_mb": args.mb,
        "upload_seconds": upload_seconds,
        "stored_mb": stored_mb,
        "workers": {
            str(pid): {"before_mb": before[pid] / 1024, "peak_mb": peak[pid] / 1024,
                       "after_mb": after[pid] / 1024, "peak_growth_mb": growth[pid]}
            for pid in workers
        },
        "max_peak_growth_mb": max(growth.values()),
        "refusal_2gb": {"status": big_status, "body": big_body, "bytes_sent": big_sent,
                        "ms": refusal_ms, "disk_growth_bytes": disk_after - disk_before},
    }  # fmt: skip
    (OUT / "upload_memory.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(
        f"\n{args.mb} MB upload in {upload_seconds:.1f} s; worker RSS growth (peak − before): "
        f"{result['max_peak_growth_mb']:.1f} MB (target ≤ 30 MB)\n"
        f"2 GB declared: {big_status} after {big_sent} bytes in {refusal_ms:.0f} ms; "
        f"disk growth {disk_after - disk_before} bytes"
    )


if __name__ == "__main__":
    main()
