"""How the plan sizes threads and memory (pure: no ffmpeg runs).

The encode must stay crf 23 / preset medium / profile main whatever the size; only
thread counts and, above 1080p, x264's lookahead length (memory) change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from the_flip.media import Limits, plan
from the_flip.media.plan import THUMBNAIL_FRAMES, thread_counts, usable_cpus
from the_flip.media.probe import parse


def hevc(width: int, height: int, trc: str = "") -> dict:
    video = {
        "index": 0,
        "codec_type": "video",
        "codec_name": "hevc",
        "profile": "Main 10" if trc else "Main",
        "width": width,
        "height": height,
        "pix_fmt": "yuv420p10le" if trc else "yuv420p",
        "avg_frame_rate": "30/1",
        "r_frame_rate": "30/1",
        "color_transfer": trc,
        "color_space": "bt2020nc" if trc else "",
    }
    audio = {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2,
             "sample_rate": "48000"}  # fmt: skip
    fmt = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.0", "bit_rate": "20000000"}
    return {"format": fmt, "streams": [video, audio]}


def encode_command(info_json: dict, limits: Limits = Limits()) -> list[str]:  # noqa: B008
    p = plan(parse(info_json), limits=limits)
    [cmd] = p.commands(Path("in.mov"), Path("out.mp4"), Path("poster.jpg"))
    return cmd


def option(cmd: list[str], name: str, occurrence: int = 0) -> str:
    found = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == name]
    return found[occurrence]


def test_quality_settings_never_depend_on_size_or_threads():
    for size in ((1920, 1080), (3840, 2160)):
        for limits in (Limits(), Limits(threads=1)):
            cmd = encode_command(hevc(*size), limits)
            assert (option(cmd, "-crf"), option(cmd, "-preset"), option(cmd, "-profile:v")) == (
                "23",
                "medium",
                "main",
            )


def test_without_a_cap_x264_gets_its_own_default_of_one_and_a_half_threads_per_cpu():
    cmd = encode_command(hevc(1920, 1080, "arib-std-b67"))
    x264 = max(1, usable_cpus() * 3 // 2)
    assert option(cmd, "-x264-params") == f"threads={x264}"
    assert option(cmd, "-threads", 0) == str(usable_cpus())  # decoder
    assert option(cmd, "-filter_complex_threads") == "1"  # slice threads cost CPU up to 1080p
    big = encode_command(hevc(3840, 2160, "arib-std-b67"))
    assert option(big, "-filter_complex_threads") == str(usable_cpus())


def test_an_explicit_cap_limits_decoder_filters_and_encoder():
    cmd = encode_command(hevc(1920, 1080), Limits(threads=1))
    assert option(cmd, "-threads", 0) == "1"
    assert option(cmd, "-filter_complex_threads") == "1"
    assert option(cmd, "-threads", 1) == "1"
    assert option(cmd, "-x264-params") == "threads=1"


def test_up_to_1080p_x264_keeps_preset_mediums_lookahead():
    assert "rc-lookahead" not in option(encode_command(hevc(1920, 1080)), "-x264-params")
    assert "rc-lookahead" not in option(encode_command(hevc(1080, 1920)), "-x264-params")


@pytest.mark.parametrize("trc", ["", "arib-std-b67"])
def test_4k_decodes_in_one_thread_and_shortens_the_lookahead_for_memory(trc):
    cmd = encode_command(hevc(3840, 2160, trc))
    assert option(cmd, "-threads", 0) == "1"  # one set of 4K reference frames
    params = dict(kv.split("=") for kv in option(cmd, "-x264-params").split(":"))
    assert params["rc-lookahead"] == str(Limits().large_rc_lookahead)
    assert params["sync-lookahead"] == "0"
    assert int(params["threads"]) <= 2


def test_threads_follow_the_cpus_the_caller_says_the_machine_has():
    """Settings pass the cgroup CPU quota (docker --cpus 1 keeps both cores in the affinity)."""
    one_cpu = Limits(cpus=1)
    cmd = encode_command(hevc(1920, 1080, "arib-std-b67"), one_cpu)
    assert option(cmd, "-threads", 0) == "1"
    assert option(cmd, "-x264-params") == "threads=1"
    four = encode_command(hevc(1920, 1080), Limits(cpus=4))
    assert option(four, "-threads", 0) == "4"
    assert option(four, "-x264-params") == "threads=6"  # x264's own 1.5 x
    big = encode_command(hevc(3840, 2160, "arib-std-b67"), Limits(cpus=1, large_rc_lookahead=10))
    assert option(big, "-x264-params") == "threads=1:rc-lookahead=10:sync-lookahead=0"
    assert option(big, "-filter_complex_threads") == "1"


def test_thread_counts_never_below_one():
    t = thread_counts(Limits(), 3840 * 2160, 2400 * 1350)
    assert min(t.decoder, t.filters, t.x264) >= 1


def test_the_poster_branch_only_scales_the_frames_thumbnail_looks_at():
    graph = option(encode_command(hevc(1920, 1080)), "-filter_complex")
    poster = graph.split(";[p]", 1)[1]
    assert poster.startswith(f"trim=end_frame={THUMBNAIL_FRAMES},scale=320:-2,")
