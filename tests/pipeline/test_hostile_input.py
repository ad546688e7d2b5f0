"""Uploads that are broken, not videos, too big, or crafted to make ffmpeg read other files.

Each one ends in a MediaError whose message a maintainer understands, quickly.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from the_flip.media import Limits, MediaError, probe, transcode

from .conftest import ff


def refused(source: Path, workdir: Path, **kwargs) -> MediaError:
    start = time.monotonic()
    with pytest.raises(MediaError) as info:
        transcode(source, workdir, **kwargs)
    assert time.monotonic() - start < 20
    assert not (workdir / "video.mp4").exists()
    assert list(workdir.iterdir()) == [], "scratch space cleaned up"
    err = info.value
    assert str(err) == err.reason and err.reason.endswith(".")
    return err


def test_an_empty_file_is_reported_as_damaged(tmp_path, workdir):
    empty = tmp_path / "IMG_0001.MOV"
    empty.write_bytes(b"")
    err = refused(empty, workdir)
    assert (err.code, err.reason) == ("damaged", "The video file is damaged or incomplete.")


def test_a_text_file_renamed_mov_is_not_a_video(tmp_path, workdir):
    fake = tmp_path / "notes.mov"
    fake.write_text("Flipper coil on Eight Ball Deluxe replaced.\n" * 50)
    err = refused(fake, workdir)
    assert err.reason == "This file is not a video we can read."
    assert err.code in ("unreadable", "unsupported_format")
    assert err.detail, "ffprobe's stderr is kept for admins"


def test_a_photo_renamed_mov_is_refused_by_the_format_whitelist(tmp_path, workdir):
    photo = tmp_path / "photo.mov"
    ff("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", "-f", "image2",
       "-c:v", "mjpeg", photo)  # fmt: skip
    err = refused(photo, workdir)
    assert err.code == "unsupported_format"


def test_an_audio_only_recording_has_no_video(clip, workdir):
    err = refused(clip("audio_only.mov"), workdir)
    assert (err.code, err.reason) == ("no_video", "This file has no video in it.")
    assert "novideo" in err.probe_summary


def test_a_truncated_upload_without_its_index_is_damaged(clip, tmp_path, workdir):
    data = clip("no_faststart.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    err = refused(cut, workdir)
    assert err.code == "damaged"
    assert "moov atom not found" in err.detail


def test_a_truncated_upload_with_its_index_first_is_damaged_not_half_published(
    clip, tmp_path, workdir
):
    full = tmp_path / "full.mp4"
    ff("-i", clip("no_faststart.mp4"), "-c", "copy", "-movflags", "+faststart", full)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    err = refused(cut, workdir)
    assert err.code == "damaged"


def test_a_video_over_15_minutes_is_refused_before_decoding(clip, workdir):
    err = refused(clip("sixteen_minutes.mp4"), workdir)
    assert (err.code, err.reason) == ("too_long", "This video is longer than 15 minutes.")
    assert "960.0s" in err.probe_summary


def test_the_duration_limit_wording_follows_the_setting(clip, workdir):
    err = refused(clip("compatible.mp4"), workdir, limits=Limits(max_duration=1))
    assert err.reason == "This video is longer than 1 second."


def test_picture_size_and_frame_rate_limits_come_from_the_probe(clip, workdir):
    err = refused(clip("compatible.mp4"), workdir, limits=Limits(max_width=200, max_height=200))
    assert err.code == "too_large"
    assert err.reason == "This video's picture is larger than 200 by 200 pixels."
    err = refused(clip("compatible.mp4"), workdir, limits=Limits(max_fps=24))
    assert err.code == "too_fast"


# --- Demuxers that open other files -------------------------------------------------------
#
# How we detect that ffprobe/ffmpeg followed a playlist: the playlist names a FIFO.
# A process that opens a FIFO for reading blocks inside open() until a writer appears.
# A watcher thread polls open(fifo, O_WRONLY | O_NONBLOCK): that fails with ENXIO while
# nobody has the FIFO open for reading and succeeds the moment a reader is blocked in
# open(). The reader stays blocked until we see it, so no open can be missed (unlike
# atime, which relatime/noatime mounts do not update reliably). We then close our end
# and the reader sees EOF. The control tests prove the detector fires with a plain,
# unprotected ffprobe.


def _opened_while(fifo: Path, action) -> bool:
    opened = threading.Event()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO
                time.sleep(0.002)
                continue
            opened.set()
            os.close(fd)
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        action()
    finally:
        stop.set()
        watcher.join(5)
    return opened.is_set()


@pytest.fixture
def bait(tmp_path) -> Path:
    fifo = tmp_path / "secret.ts"
    os.mkfifo(fifo)
    return fifo


def hls_playlist(tmp_path: Path, target: Path) -> Path:
    playlist = tmp_path / "IMG_0002.mov"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target.name}\n#EXT-X-ENDLIST\n"
    )
    return playlist


def ffconcat_list(tmp_path: Path, target: Path) -> Path:
    playlist = tmp_path / "IMG_0003.mov"
    playlist.write_text(f"ffconcat version 1.0\nfile {target.name}\n")
    return playlist


def _plain_ffprobe(path: Path):
    subprocess.run(
        ["ffprobe", "-v", "quiet", "-show_format", str(path)],
        stdin=subprocess.DEVNULL,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("make", [hls_playlist, ffconcat_list])
def test_control_an_unprotected_ffprobe_does_follow_the_playlist(tmp_path, bait, make):
    assert _opened_while(bait, lambda: _plain_ffprobe(make(tmp_path, bait)))


@pytest.mark.parametrize("make", [hls_playlist, ffconcat_list])
def test_a_playlist_disguised_as_mov_is_refused_without_opening_what_it_names(
    tmp_path, bait, workdir, make
):
    playlist = make(tmp_path, bait)
    errors = []

    def attempt():
        with pytest.raises(MediaError) as info:
            transcode(playlist, workdir)
        errors.append(info.value)

    assert not _opened_while(bait, attempt)
    assert errors[0].code == "unsupported_format"
    assert errors[0].reason == "This file is not a video we can read."


def test_probe_refuses_a_playlist_pointing_at_a_real_video(tmp_path, clip):
    real = tmp_path / "real.mp4"
    real.write_bytes(clip("compatible.mp4").read_bytes())
    with pytest.raises(MediaError) as info:
        probe(hls_playlist(tmp_path, real))
    assert info.value.code == "unsupported_format"
