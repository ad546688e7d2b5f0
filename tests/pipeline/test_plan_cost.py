"""A video that cannot be converted within the timeout on this machine is refused up front,
with a sentence that says what to do, instead of blocking the worker for 30 minutes and then
failing anyway. Pure: the estimate comes from the probe alone (no ffmpeg runs here; bench/cost.py
checks it against real runs)."""

from __future__ import annotations

import pytest

from the_flip.media import Limits, MediaError, plan
from the_flip.media.probe import parse

TWO_CPUS = Limits(cpus=2)  # this machine; the default reads the affinity mask


def clip(
    *,
    codec: str = "h264",
    size: tuple[int, int] = (1920, 1080),
    fps: int = 30,
    minutes: float = 1,
    hlg: bool = False,
    container: str = "mov,mp4,m4a,3gp,3g2,mj2",
    bit_rate: int = 30_000_000,  # above the remux rule's limit: re-encoded
) -> dict:
    """ffprobe's JSON for a phone-like video."""
    video = {
        "index": 0,
        "codec_type": "video",
        "codec_name": codec,
        "profile": "Main 10" if hlg else "Main",
        "width": size[0],
        "height": size[1],
        "pix_fmt": "yuv420p10le" if hlg else "yuv420p",
        "avg_frame_rate": f"{fps}/1",
        "r_frame_rate": f"{fps}/1",
        "color_transfer": "arib-std-b67" if hlg else "",
        "color_space": "bt2020nc" if hlg else "",
    }
    fmt = {"format_name": container, "duration": str(minutes * 60), "bit_rate": str(bit_rate)}
    return {"format": fmt, "streams": [video]}


def test_the_14_minute_4k_60fps_clip_is_refused_with_a_sentence_that_says_what_to_do():
    info = parse(clip(size=(3840, 2160), fps=60, minutes=14, bit_rate=180_000))  # 18 MB
    with pytest.raises(MediaError) as refused:
        plan(info, limits=TWO_CPUS)
    assert refused.value.code == "too_costly"
    assert str(refused.value).startswith(
        "This video is too long and too detailed for this server to convert within 30 minutes"
    )
    assert "Trim it, or record at a lower resolution or frame rate." in str(refused.value)
    # At 2 %/min (what the attack measured) it would have needed ~50 minutes.
    minutes = int(str(refused.value).split("at least ")[1].split()[0])
    assert 40 <= minutes <= 60, str(refused.value)
    assert "CPU-s" in refused.value.detail and "frames" in refused.value.detail


def test_a_15_minute_1080p_phone_video_still_fits_in_the_timeout():
    p = plan(parse(clip(minutes=15)), limits=TWO_CPUS)
    assert p.cost is not None and p.cost.wall_seconds < TWO_CPUS.timeout


def test_a_12_minute_4k_hdr_iphone_video_is_refused_but_one_minute_of_it_is_not():
    long = parse(clip(codec="hevc", size=(3840, 2160), minutes=12, hlg=True))
    with pytest.raises(MediaError, match="too long and too detailed"):
        plan(long, limits=TWO_CPUS)
    short = plan(parse(clip(codec="hevc", size=(3840, 2160), minutes=1, hlg=True)),
                 limits=TWO_CPUS)  # fmt: skip
    assert short.cost is not None and short.cost.wall_seconds < 5 * 60


def test_a_faster_or_bigger_machine_accepts_what_this_one_refuses():
    info = parse(clip(size=(3840, 2160), fps=60, minutes=14))
    with pytest.raises(MediaError):
        plan(info, limits=TWO_CPUS)
    assert plan(info, limits=Limits(cpus=8, cpu_seconds=8 * 1800)).cost is not None
    assert plan(info, limits=Limits(cpus=2, pixels_per_cpu_second=200e6)).cost is not None


def test_many_cpus_do_not_lift_the_per_video_cpu_seconds_limit():
    info = parse(clip(size=(3840, 2160), fps=60, minutes=14))
    with pytest.raises(MediaError) as refused:
        plan(info, limits=Limits(cpus=8))  # 3600 CPU-s / 8 CPUs: 7.5 minutes of wall clock
    sentence = str(refused.value)
    assert "within 8 minutes (it would take at least " in sentence
    assert int(sentence.split("at least ")[1].split()[0]) > 8


def test_a_remux_costs_almost_nothing_however_long():
    compatible = clip(minutes=15, bit_rate=8_000_000)  # H.264 main in .mov: copied
    p = plan(parse(compatible), limits=Limits(cpus=1, timeout=60))
    assert p.copy_video and p.cost is not None and p.cost.cpu_seconds < 60


def test_what_the_estimate_counts():
    def cost(**kw):
        p = plan(parse(clip(**kw)), limits=TWO_CPUS)
        assert p.cost is not None
        return p.cost

    base = cost()
    assert base.frames == 60 * 30
    assert cost(fps=60).cpu_seconds == pytest.approx(2 * base.cpu_seconds)
    assert cost(minutes=2).cpu_seconds == pytest.approx(2 * base.cpu_seconds)
    # HDR: the tone map works on every output pixel; HEVC decodes dearer than H.264.
    assert cost(codec="hevc", hlg=True).cpu_seconds > 1.5 * cost(codec="hevc").cpu_seconds
    assert cost(codec="hevc").cpu_seconds > base.cpu_seconds
    # 4K is encoded at 2400x1350 but decoded at 3840x2160.
    uhd = cost(size=(3840, 2160))
    assert 1.5 < uhd.cpu_seconds / base.cpu_seconds < 2.5
    assert base.wall_seconds == pytest.approx(base.cpu_seconds / 2)


def test_a_short_timeout_names_itself_in_the_sentence():
    with pytest.raises(MediaError) as refused:
        plan(parse(clip(minutes=1)), limits=Limits(cpus=2, timeout=10))
    assert "within 10 seconds" in str(refused.value)
