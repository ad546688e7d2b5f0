"""Phone-like test media, generated with ffmpeg's lavfi sources (no binary fixtures in git)."""

import json
import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=120,
    )


def iphone_hevc_mov(path: Path, *, size: str = "640x360", seconds: float = 2) -> Path:
    """Like an iPhone: HEVC 10-bit HLG (BT.2020) in .mov with an hvc1 tag and AAC stereo."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx265", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error",
        "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
        "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2", "-shortest", str(path),
    )  # fmt: skip
    return path


def android_h264_mp4(path: Path, *, size: str = "320x240", seconds: float = 2) -> Path:
    """Like an Android phone: H.264 + AAC in .mp4."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


def photo_jpeg(
    path: Path, *, size: tuple[int, int] = (800, 600), exif_orientation: int = 1
) -> Path:
    from PIL import Image

    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    image.save(path, "JPEG", exif=exif)
    return path


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def moov_before_mdat(path: Path) -> bool:
    """True when the MP4 index comes first (`+faststart`): it plays before it is all downloaded."""
    data = Path(path).read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")
