"""Peak memory of cleaning one photo (maintenance/photos.py), each in a fresh process.

For each generated photo (the largest we accept of each kind, and two we refuse), a child
process loads Django, opens the file as an upload would arrive and calls ``clean_photo``;
it reports its peak RSS growth (``VmHWM`` minus the RSS before), the time and the outcome.
The numbers go into photos.py's docstring, docs/security.md ("Photos") and the_flip/sizing.py
(PHOTO_DECODE_MB).

    .venv/bin/python bench/photo_memory.py        # JSON in bench/out/photo_memory.json
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def make_photos(folder: Path) -> dict[str, Path]:
    """The photos to measure, generated once into ``folder``."""
    from PIL import Image

    from tests.photo_files import bomb_jpeg, heic_photo, huge_jpeg, progressive_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    photos = {
        "12 MP phone JPEG": folder / "p12.jpg",
        "200 MP baseline JPEG": folder / "p200.jpg",
        "48 MP progressive JPEG": folder / "prog48.jpg",
        "48 MP HEIC": folder / "p48.heic",
        "50 MP PNG": folder / "p50.png",
        "bomb JPEG 14000x14000 (refused)": folder / "bomb.jpg",
    }
    makers = {
        "p12.jpg": lambda p: Image.new("RGB", (4032, 3024), (90, 40, 20)).save(p, quality=90),
        "p200.jpg": lambda p: huge_jpeg(p, 16320, 12240),
        "prog48.jpg": lambda p: progressive_jpeg(p, 8064, 6048),
        "p48.heic": lambda p: heic_photo(p, 8064, 6048),
        "p50.png": lambda p: Image.new("RGB", (8160, 6120), (10, 90, 30)).save(p),
        "bomb.jpg": lambda p: bomb_jpeg(p),
    }
    for path in photos.values():
        if not path.exists():
            makers[path.name](path)
    return photos


def measure_one(path: str) -> dict:
    """In this (fresh) process: clean the photo once, report peak RSS growth."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "the_flip.settings.test")
    import django

    django.setup()
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from the_flip.apps.maintenance.photos import clean_photo
    from the_flip.apps.maintenance.uploads import UploadRejected

    def rss_mb(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    data = Path(path).read_bytes()
    upload = TemporaryUploadedFile(Path(path).name, "image/jpeg", len(data), None)
    upload.write(data)
    upload.flush()
    del data
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = rss_mb("VmRSS")
    started = time.monotonic()
    try:
        result = clean_photo(upload)
        outcome = f"accepted, {len(result.read()) // 1024} KB JPEG"
    except UploadRejected as rejected:
        outcome = f"refused: {rejected}"
    peak = rss_mb("VmHWM")  # this process's own peak (ru_maxrss would include the parent's)
    return {
        "seconds": round(time.monotonic() - started, 2),
        "peak_growth_mb": round(peak - before),
        "rss_before_mb": round(before),
        "outcome": outcome,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2])))
        return
    photos = make_photos(OUT / "photos")
    rows = []
    for label, path in photos.items():
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(path)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout  # fmt: skip
        row = {"photo": label, "file_kb": path.stat().st_size // 1024, **json.loads(out)}
        rows.append(row)
        print(
            f"{label:34} {row['file_kb']:>7} KB  peak +{row['peak_growth_mb']:>4} MB  "
            f"{row['seconds']:>5.2f} s  {row['outcome'][:70]}"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "photo_memory.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
