"""What maintainers' phones produce, and what the museum's log publishes from it.

Every published video must be: H.264 Main, yuv420p, BT.709 tags, even size, long side
<= 2400 px, upright with no rotation metadata, AAC stereo or mono (or no audio), MP4
with the index (moov) first, plus a 320 px wide JPEG poster.
"""

from __future__ import annotations

import pytest

from the_flip.media import Target, plan, probe, transcode

from .conftest import audio_streams, ffprobe, signalstats, video_stream


def assert_published(result, *, width: int, height: int, copied: bool = False):
    v = video_stream(result.video_path)
    assert v["codec_name"] == "h264"
    assert v["pix_fmt"] == "yuv420p"
    if not copied:
        assert v["profile"] == "Main"
        assert (v["color_primaries"], v["color_transfer"], v["color_space"]) == ("bt709",) * 3
    assert (v["width"], v["height"]) == (width, height)
    assert (result.width, result.height) == (width, height)
    assert not v.get("side_data_list"), "no display matrix / rotation on the output"
    assert "rotate" not in v.get("tags", {})
    streams = ffprobe(result.video_path)["streams"]
    assert [s["codec_type"] for s in streams] in (["video"], ["video", "audio"])
    head = result.video_path.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and head.find(b"moov") < max(head.find(b"mdat"), 4096)
    poster = video_stream(result.poster_path)
    assert poster["codec_name"] == "mjpeg"
    assert poster["width"] == 320
    assert result.poster_path.parent == result.video_path.parent
    assert result.copied is copied


def test_an_already_compatible_phone_clip_is_remuxed_not_reencoded(clip, workdir):
    src = clip("compatible.mp4")
    result = transcode(src, workdir)
    assert_published(result, width=320, height=240, copied=True)
    assert result.reencode_reasons == ()
    assert audio_streams(result.video_path), "the sound is kept"
    assert abs(result.duration - 2.0) < 0.1
    # bit-identical video packets: the remux kept the encoder's profile and size
    assert video_stream(result.video_path)["profile"] == video_stream(src)["profile"]


def test_compatible_video_with_pcm_audio_keeps_the_video_and_converts_the_audio(clip, workdir):
    result = transcode(clip("pcm_audio.mov"), workdir)
    assert_published(result, width=320, height=240, copied=True)
    assert [a["codec_name"] for a in audio_streams(result.video_path)] == ["aac"]


def test_a_compatible_codec_at_a_wasteful_bitrate_is_reencoded(clip, workdir):
    result = transcode(clip("high_bitrate.mp4"), workdir)
    assert_published(result, width=320, height=240)
    assert result.video_path.stat().st_size < clip("high_bitrate.mp4").stat().st_size / 3


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_phone_held_sideways_gives_an_upright_video_without_rotation_tags(clip, workdir, degrees):
    src = clip(f"rotated_{degrees}.mov")
    assert probe(src).video.rotation == degrees
    result = transcode(src, workdir)
    w, h = (240, 320) if degrees in (90, 270) else (320, 240)
    assert_published(result, width=w, height=h)
    assert ffprobe(result.poster_path)["streams"][0]["height"] == (426 if w == 240 else 240)


def test_portrait_4k_becomes_1350x2400(clip, workdir):
    result = transcode(clip("portrait_4k_hevc.mov"), workdir, target=Target(preset="veryfast"))
    assert_published(result, width=1350, height=2400)


@pytest.mark.parametrize(
    ("name", "size"),
    [("odd_2560x1179.mp4", (2400, 1106)), ("odd_1081x1921.mp4", (1080, 1920))],
)
def test_odd_sizes_come_out_even_and_never_upscaled(clip, workdir, name, size):
    result = transcode(clip(name), workdir, target=Target(preset="veryfast"))
    assert_published(result, width=size[0], height=size[1])


@pytest.mark.parametrize("name", ["h264_422_10bit.mov", "h264_444.mp4"])
def test_10bit_and_422_444_video_becomes_8bit_420_main(clip, workdir, name):
    assert probe(clip(name)).video.pix_fmt != "yuv420p"
    assert_published(transcode(clip(name), workdir), width=320, height=240)


def _tone_mapped(result, reference):
    out, ref = signalstats(result.video_path), signalstats(reference)
    assert out["YAVG"] == pytest.approx(ref["YAVG"], rel=0.15), "not too dim, not too bright"
    assert out["SATAVG"] >= 0.8 * ref["SATAVG"], "not washed out"
    return out, ref


@pytest.mark.parametrize("name", ["iphone_hlg.mov", "android_pq.mp4"])
def test_hdr_video_is_tone_mapped_to_sdr_bt709_that_is_neither_washed_out_nor_dim(
    clip, workdir, name
):
    info = probe(clip(name))
    assert info.video.hdr in ("hlg", "pq") and info.video.bit_depth == 10
    result = transcode(clip(name), workdir)
    assert_published(result, width=640, height=360)
    _tone_mapped(result, clip("sdr_reference.mp4"))


def test_hdr_without_tone_mapping_would_fail_the_washed_out_check(clip):
    # The check above has teeth: the HLG clip's own pixels (what the seed's plain
    # conversion publishes) are far less saturated than the SDR picture.
    raw, ref = signalstats(clip("iphone_hlg.mov")), signalstats(clip("sdr_reference.mp4"))
    assert raw["SATAVG"] < 0.5 * ref["SATAVG"]


def test_iphone_dolby_vision_84_is_handled_like_hlg(clip, workdir):
    info = probe(clip("iphone_dolby_vision_84.mov"))
    assert (info.video.hdr, info.video.dv_profile, info.video.dv_compat_id) == (
        "dolby_vision",
        8,
        4,
    )
    assert "DV8.4" in info.summary()
    assert plan(info).tonemap == "hlg"
    result = transcode(clip("iphone_dolby_vision_84.mov"), workdir)
    assert_published(result, width=640, height=360)
    _tone_mapped(result, clip("sdr_reference.mp4"))


def test_extra_video_audio_timecode_and_subtitle_tracks_are_dropped(clip, workdir):
    src = clip("iphone_extra_tracks.mov")
    kinds = [s["codec_type"] for s in ffprobe(src)["streams"]]
    assert kinds.count("video") == 2 and "data" in kinds and kinds.count("audio") == 2
    result = transcode(src, workdir)
    assert [s["codec_type"] for s in ffprobe(result.video_path)["streams"]] == ["video", "audio"]
    assert (result.width, result.height) == (320, 240)


def test_undecodable_first_audio_falls_back_to_the_next_audio_track(clip, workdir):
    src = clip("broken_first_audio.mov")
    info = probe(src)
    assert [a.decodable for a in info.audio] == [False, True]
    result = transcode(src, workdir)
    assert audio_streams(result.video_path)[0]["channels"] == 2


def test_only_undecodable_audio_gives_a_video_without_audio(clip, workdir):
    result = transcode(clip("only_broken_audio.mov"), workdir)
    assert audio_streams(result.video_path) == []


def test_a_clip_without_sound_gives_a_valid_mp4_without_audio(clip, workdir):
    result = transcode(clip("no_audio.mov"), workdir)
    assert_published(result, width=320, height=240)
    assert audio_streams(result.video_path) == []


@pytest.mark.parametrize("name", ["surround_51.mov", "surround_71.mkv"])
def test_surround_sound_is_mixed_down_to_stereo(clip, workdir, name):
    assert probe(clip(name)).first_audio.channels in (6, 8)
    result = transcode(clip(name), workdir)
    (audio,) = audio_streams(result.video_path)
    assert (audio["codec_name"], audio["channels"]) == ("aac", 2)


def test_variable_frame_rate_keeps_every_frame_and_stays_in_sync(clip, workdir):
    src = clip("vfr.mp4")
    assert probe(src).video.vfr
    result = transcode(src, workdir, target=Target(max_long_side=200))  # force a re-encode
    assert not result.copied
    assert result.reencode_reasons == ("larger than target",)

    def frames(path):
        v = video_stream(path)
        return int(v["nb_frames"]), float(v["duration"])

    src_frames, src_dur = frames(src)
    out_frames, out_dur = frames(result.video_path)
    assert out_frames == src_frames, "no duplicated or dropped frames (not forced to CFR)"
    assert out_dur == pytest.approx(src_dur, abs=0.05)
    (audio,) = audio_streams(result.video_path)
    assert float(audio["duration"]) == pytest.approx(out_dur, abs=0.1)


@pytest.mark.parametrize(
    ("name", "size"),
    [("vp9_opus.webm", (320, 240)), ("mjpeg.avi", (320, 240)), ("old_phone.3gp", (176, 144))],
)
def test_webm_mjpeg_avi_and_old_3gp_phones_are_converted(clip, workdir, name, size):
    result = transcode(clip(name), workdir)
    assert_published(result, width=size[0], height=size[1])
    assert [a["codec_name"] for a in audio_streams(result.video_path)] == ["aac"]


def test_a_clip_shorter_than_a_second_still_gets_a_poster(clip, workdir):
    result = transcode(clip("very_short.mp4"), workdir, target=Target(max_long_side=240))
    assert_published(result, width=240, height=180)
    assert result.duration < 1


def test_location_and_other_metadata_are_not_published(clip, workdir, tmp_path):
    tagged = tmp_path / "gps.mov"
    from .conftest import ff

    ff("-i", clip("compatible.mp4"), "-c", "copy",
       "-metadata", "location=+48.8584+002.2945/", "-metadata", "title=secret", tagged)  # fmt: skip
    result = transcode(tagged, workdir)
    tags = ffprobe(result.video_path)["format"].get("tags", {})
    assert not {"location", "title", "com.apple.quicktime.location.ISO6709"} & set(tags)
