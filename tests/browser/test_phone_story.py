"""A maintainer at the machine with a phone on weak Wi-Fi: log in, log work with a video and a
photo, watch the upload and the processing, play the video, remove things, recover from a bad
file. Debian's chromium, the real gunicorn and a real huey consumer."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import clips
from tests.browser.conftest import run_axe, throttle_upload
from tests.conftest import wait_for
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROCESSING = re.compile(r"Processing… \d+%")


@pytest.fixture(scope="session")
def story_clip(media_dir) -> Path:
    """An iPhone-like HEVC HLG clip big enough (~1 MB, ~4 s to transcode) to watch progress."""
    return clips.iphone_hevc_mov(media_dir / "IMG_0100.MOV", size="960x540", seconds=8)


def _video_plays(page) -> dict:
    return page.evaluate(
        """async () => {
            const v = document.querySelector('.tile video');
            v.muted = true;
            await v.play();
            const start = v.currentTime;
            await new Promise((r) => setTimeout(r, 1500));
            return {readyState: v.readyState, start, now: v.currentTime,
                    error: v.error && v.error.code, poster: v.getAttribute('poster'),
                    width: v.videoWidth, height: v.videoHeight};
        }"""
    )


def test_phone_logs_work_with_a_video_and_a_photo(
    phone, maintainer_login, machine, consumer_factory, story_clip, photo, shots
):
    page = phone
    consumer_factory()
    page.goto("/accounts/login/")
    shots(page, "01-login")
    maintainer_login(page)
    shots(page, "02-machines")

    page.get_by_role("link", name=re.compile("Eight Ball Deluxe")).click()
    expect(page.get_by_role("heading", name="Eight Ball Deluxe")).to_be_visible()
    page.get_by_role("link", name="New log entry").click()
    page.get_by_label("What did you do?").fill("Rebuilt the left flipper; see the video")
    page.get_by_label("Photos and videos").set_input_files([str(story_clip), str(photo)])
    shots(page, "03-new-entry")

    # Weak Wi-Fi: ~256 KB/s up, so the ~1 MB video takes a few seconds and the bar moves.
    throttle_upload(page, 256 * 1024)
    page.get_by_role("button", name="Save log entry").click()
    seen = page.wait_for_function(
        """() => { const p = document.querySelector('.tile progress');
                   return p && p.value > 0 && p.value < 100 ? p.value : null; }"""
    ).json_value()
    assert 0 < seen < 100
    shots(page, "04-uploading")
    later = page.wait_for_function(
        f"""() => {{ const p = document.querySelector('.tile progress');
                    return !p || p.value > {seen} ? (p ? p.value : 100) : null; }}"""
    ).json_value()
    assert later > seen, "the upload progress bar did not move"
    entry = LogEntry.objects.get()
    assert entry.machine == machine
    assert page.url.endswith(f"/logs/{entry.pk}/"), "the page should become the entry's page"
    assert entry.text == "Rebuilt the left flipper; see the video"

    # Both uploads answered; the photo shows at once, the video is being processed.
    expect(page.locator('.tile[data-status="uploading"]')).to_have_count(0, timeout=30_000)
    throttle_upload(page, None)
    video_tile = page.locator('.tile[data-kind="video"]')
    photo_tile = page.locator('.tile[data-kind="photo"]')
    expect(photo_tile.locator("img")).to_be_visible()
    assert photo_tile.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    expect(video_tile.get_by_role("status")).to_have_text(PROCESSING, timeout=30_000)
    shots(page, "05-processing")

    # A reload mid-processing shows the entry with the video still in progress, then it plays.
    page.reload()
    expect(page.get_by_text("Rebuilt the left flipper; see the video")).to_be_visible()
    video_tile = page.locator('.tile[data-kind="video"]')
    state = video_tile.get_attribute("data-status")
    assert state in ("processing", "ready"), state
    if state == "processing":
        expect(video_tile.get_by_role("status")).to_have_text(re.compile(r"Processing…"))
    expect(video_tile.locator("video")).to_be_visible(timeout=60_000)
    video = LogEntryMedia.objects.get(kind="video")
    assert video.transcode_status == "ready"
    assert video_tile.locator("video").get_attribute("poster") == video.poster_file.url
    result = _video_plays(page)
    assert result["error"] is None, result
    assert result["readyState"] >= 2, result
    assert result["now"] > result["start"] + 0.5, f"the video did not play: {result}"
    assert (result["width"], result["height"]) == (960, 540)
    page.evaluate("() => document.querySelector('.tile video').pause()")
    shots(page, "06-ready", full_page=True)
    assert run_axe(page) == []

    # Remove the photo: the first tap arms the button, the second removes it.
    remove = photo_tile.get_by_role("button", name="Remove")
    remove.click()
    expect(photo_tile.get_by_role("button", name=re.compile("Tap again"))).to_be_visible()
    shots(page, "07-remove-armed")
    photo_tile.get_by_role("button", name=re.compile("Tap again")).click()
    expect(page.locator('.tile[data-kind="photo"]')).to_have_count(0)
    assert list(LogEntryMedia.objects.values_list("kind", flat=True)) == ["video"]
    assert page.console_errors == []


def test_a_bad_file_says_why_and_can_be_retried_or_removed(
    phone, maintainer_login, machine, maintainer, consumer_factory, tmp_path, shots
):
    page = phone
    consumer_factory()
    entry = LogEntry.objects.create(machine=machine, author=maintainer, text="Coil stop")
    bogus = tmp_path / "IMG_0666.MOV"
    bogus.write_text("this is not a video, just words in a file named .MOV\n" * 50)
    maintainer_login(page)
    page.goto(entry.get_absolute_url())
    page.get_by_label("Add photos or videos").set_input_files(str(bogus))

    tile = page.locator('.tile[data-kind="video"]')
    alert = tile.get_by_role("alert")
    expect(alert).to_contain_text("Could not process this video", timeout=60_000)
    reason = LogEntryMedia.objects.get().error
    assert reason and reason in alert.inner_text()
    shots(page, "01-failed")
    assert run_axe(page) == []

    # Try again: back in line, fails again for the same reason (the file really is bad).
    with page.expect_response(lambda r: r.url.endswith("/retry/")) as retried:
        tile.get_by_role("button", name="Try again").click()
    assert retried.value.status == 200
    assert retried.value.json()["status"] == "pending"
    expect(tile.get_by_role("alert")).to_contain_text(reason, timeout=60_000)
    wait_for(lambda: LogEntryMedia.objects.get().attempts == 1, timeout=5, what="a new attempt")

    # The failure survives a reload, with the same ways out.
    page.reload()
    tile = page.locator('.tile[data-kind="video"]')
    expect(tile.get_by_role("alert")).to_contain_text(reason)
    expect(tile.get_by_role("button", name="Try again")).to_be_visible()
    tile.get_by_role("button", name="Remove").click()
    tile.get_by_role("button", name=re.compile("Tap again")).click()
    expect(page.locator(".tile")).to_have_count(0)
    assert not LogEntryMedia.objects.exists()
    assert page.console_errors == []


def test_reloading_while_a_video_waits_shows_it_waiting_then_it_plays(
    phone, maintainer_login, machine, maintainer, consumer_factory, android_clip, tmp_path, shots
):
    """No worker yet: the videos wait; a reload shows them waiting; a wrong one can be removed
    before it is processed; the worker comes; the other plays."""
    page = phone
    entry = LogEntry.objects.create(machine=machine, author=maintainer, text="Pop bumper")
    wrong = tmp_path / "VID_WRONG.mp4"
    wrong.write_bytes(android_clip.read_bytes())
    maintainer_login(page)
    page.goto(entry.get_absolute_url())
    page.get_by_label("Add photos or videos").set_input_files([str(android_clip), str(wrong)])
    tiles = page.locator('.tile[data-kind="video"]')
    expect(tiles).to_have_count(2)
    for i in range(2):
        expect(tiles.nth(i).get_by_role("status")).to_have_text("Waiting to process…")

    page.reload()
    tiles = page.locator('.tile[data-kind="video"]')
    expect(tiles).to_have_count(2)
    for i in range(2):
        expect(tiles.nth(i)).to_have_attribute("data-status", "pending")
        expect(tiles.nth(i).get_by_role("status")).to_have_text("Waiting to process…")
    shots(page, "01-waiting-after-reload")

    # Remove the wrong one while it waits; the page polls meanwhile and must not disarm it.
    wrong_id = LogEntryMedia.objects.get(original_name="VID_WRONG.mp4").pk
    wrong_tile = page.locator(f'.tile[data-media-url="/api/media/{wrong_id}/"]')
    wrong_tile.get_by_role("button", name="Remove").click()
    page.wait_for_timeout(2000)  # longer than one poll
    wrong_tile.get_by_role("button", name="Tap again to remove").click()
    expect(wrong_tile).to_have_count(0)
    assert not LogEntryMedia.objects.filter(pk=wrong_id).exists()

    consumer_factory()
    tile = page.locator('.tile[data-kind="video"]')
    expect(tile.locator("video")).to_be_visible(timeout=60_000)
    result = _video_plays(page)
    assert result["readyState"] >= 2 and result["now"] > result["start"] + 0.5, result
    assert LogEntryMedia.objects.get().original_name == android_clip.name


def test_a_file_over_the_limit_is_refused_on_the_phone_before_uploading(
    phone, maintainer_login, machine, maintainer, tmp_path
):
    entry = LogEntry.objects.create(machine=machine, author=maintainer, text="Big one")
    huge = tmp_path / "IMG_9999.MOV"
    with huge.open("wb") as sparse:  # 201 MB that take no disk space
        sparse.truncate(201 * 1024 * 1024)
    requests = []
    phone.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    maintainer_login(phone)
    phone.goto(entry.get_absolute_url())
    phone.get_by_label("Add photos or videos").set_input_files(str(huge))
    expect(phone.get_by_role("alert")).to_contain_text("larger than 200 MB")
    expect(phone.get_by_role("button", name="Dismiss")).to_be_visible()
    assert requests == []
    wait_for(lambda: not LogEntryMedia.objects.exists(), timeout=1, what="nothing stored")


def test_eleven_files_are_refused_on_the_phone_before_anything_is_saved(
    phone, maintainer_login, machine, photo, tmp_path
):
    """The page knows the server's limit of ten files a log entry (data-upload-rules) and
    says so, as the API and the no-JavaScript form do, instead of sending a few."""
    copies = []
    for i in range(11):
        copy = tmp_path / f"IMG_{i:04}.JPG"
        copy.write_bytes(photo.read_bytes())
        copies.append(str(copy))
    requests = []
    phone.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    dialogs = []
    phone.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    maintainer_login(phone)
    phone.goto(f"/machines/{machine.slug}/log/new/")
    phone.get_by_label("What did you do?").fill("Photographed every coil")
    phone.get_by_label("Photos and videos").set_input_files(copies)
    phone.get_by_role("button", name="Save log entry").click()
    wait_for(lambda: dialogs, timeout=10, what="the refusal")
    assert dialogs == ["Attach at most 10 files at once."]
    assert requests == []
    assert not LogEntry.objects.exists()
