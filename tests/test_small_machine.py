"""The smallest paid machine is the tested default: one CPU and 1 GB, no swap.

The image runs under ``docker run --cpus 1 --memory 1g --memory-swap 1g`` and gets the worst
we accept at once (tests/small_machine.py): a 4K 10-bit HLG iPhone clip and a 4K 60 fps clip,
a 200 MP phone JPEG and a 50 MP PNG while the first transcodes, a 60 MB upload streaming in,
and a maintainer's page fetched every 100 ms throughout. Both videos must be ready, nothing
OOM-killed, every page answered. Prints the container's peak anonymous memory, the transcode
times and the page latency idle vs busy (docs/benchmarks.md, "Small machine", has the
1 CPU / 1 GB and 2 CPU / 2 GB runs side by side: bench/small_machine.py).
"""

from __future__ import annotations

import pytest

from tests.small_machine import make_media, run_scenario
from tests.test_container import image  # noqa: F401  (the image fixture: THE_FLIP_IMAGE or a build)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_one_cpu_and_1_gb_take_two_4k_clips_big_photos_and_an_upload_while_pages_answer(
    image,  # noqa: F811
    tmp_path_factory,
):
    media = make_media(tmp_path_factory.mktemp("small-machine"), seconds=2)
    report = run_scenario(image, media, cpus="1", memory="1g")
    print("\n" + "\n".join(report.lines()))
    assert report.video_status == {"hlg": "ready", "4k60": "ready"}, report
    assert report.photo_status == {"jpeg200": 201, "png50": 201}, report
    assert report.streamed_status == 201, report
    assert report.pages_failed == [], report.pages_failed[:5]
    assert len(report.page_busy_ms) > 50, report
    assert report.oom_kills == 0 and not report.oom_killed, report
    assert report.peak_anon_mb < 1024, report
