"""Memory cost of storing a big upload in the bucket: the_flip's transfer settings against
boto3's defaults, in the same run.

A moto S3 server runs in its own process (so its memory is not counted); each variant stores
one file of --mb MiB through the storage API (`default_storage.save`, as the web does with an
upload's temp file) in a fresh Python process, which reports its peak RSS growth and time.
Writes bench/out/bucket_upload.json.

    .venv/bin/python bench/bucket_upload.py [--mb 200] [--runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from tests.live_stack import free_port, is_listening  # noqa: E402

_CHILD = r"""
import json, os, resource, sys, tempfile, time
import django
django.setup()
from boto3.s3.transfer import TransferConfig
from django.core.files import File
from django.core.files.storage import default_storage

if sys.argv[1] == "boto3-defaults":
    default_storage.transfer_config = TransferConfig()
with tempfile.NamedTemporaryFile() as upload:  # like Django's upload temp file
    block = os.urandom(1024 * 1024)
    for _ in range(int(sys.argv[2])):
        upload.write(block)
    upload.flush()
    upload.seek(0)
    default_storage.exists("warm-up")  # the connection, before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    default_storage.save("originals/bench.mov", File(upload, name="bench.mov"))
    took = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_growth_mib": (after - before) / 1024, "seconds": took}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "the_flip.settings.prod",
        "SECRET_KEY": "bench-" + "x" * 40,
        "DATA_DIR": tempfile.mkdtemp(prefix="bench-bucket-"),
        "BUCKET_NAME": "bench",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while not is_listening(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"moto_server did not start on port {port}")
            time.sleep(0.2)
        import boto3

        boto3.client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench")  # fmt: skip
        results: dict[str, list[dict]] = {"boto3-defaults": [], "the_flip": []}
        for _ in range(args.runs):
            for variant in results:  # interleaved: both see the same machine load
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, variant, str(args.mb)],
                    cwd=ROOT, env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        moto.terminate()
        moto.wait()
    summary = {
        variant: {
            "rss_growth_mib": statistics.median(r["rss_growth_mib"] for r in runs),
            "seconds": statistics.median(r["seconds"] for r in runs),
        }
        for variant, runs in results.items()
    }
    base, ours = summary["boto3-defaults"], summary["the_flip"]
    print(f"{args.mb} MiB upload to the bucket, median of {args.runs}:")
    print("| transfer settings | peak RSS growth | time |")
    print("|---|---|---|")
    for variant, row in summary.items():
        print(f"| {variant} | {row['rss_growth_mib']:.0f} MiB | {row['seconds']:.1f} s |")
    memory_ratio = ours["rss_growth_mib"] / base["rss_growth_mib"]
    time_ratio = ours["seconds"] / base["seconds"]
    print(f"the_flip / boto3-defaults: memory {memory_ratio:.2f}, time {time_ratio:.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bucket_upload.json").write_text(json.dumps({"mb": args.mb, "runs": results,
                                                        "summary": summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
