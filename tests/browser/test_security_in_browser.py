"""In a real browser the strict Content-Security-Policy blocks nothing the site needs (its pages
and the admin), and a maintainer locked out by the login throttle reads why."""

import pytest
from django.core.files.base import ContentFile

from tests import clips
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = pytest.mark.browser


def test_the_pages_and_the_admin_run_under_the_policy(
    phone, maintainer_login, maintainer, machine, shots
):
    maintainer.is_superuser = True
    maintainer.save()
    page = phone
    maintainer_login(page)
    for path in ("/", machine.get_absolute_url(), f"/machines/{machine.slug}/log/new/",
                 "/accounts/password_change/"):  # fmt: skip
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto("/admin/")
    shots(page, "01-admin")
    page.goto("/admin/catalog/machine/")
    page.get_by_role("link", name=machine.name).click()
    page.wait_for_url("**/change/")
    # The admin's JavaScript runs: the "Save and continue" flow posts and comes back.
    page.get_by_role("button", name="Save and continue editing").click()
    page.wait_for_url("**/change/")
    assert "was changed successfully" in page.content()
    page.goto("/admin/axes/accessattempt/")
    shots(page, "02-admin-axes")
    # The admin's JS really ran (its sidebar toggle is built by nav_sidebar.js).
    assert page.locator("#toggle-nav-sidebar").count() == 1
    assert page.console_errors == []


def test_a_locked_out_maintainer_reads_why_on_the_login_page(
    phone, maintainer, settings, shots, live_app
):
    page = phone
    page.goto("/accounts/login/")
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        page.get_by_label("Username").fill(maintainer.username)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert "Too many failed logins" in alert.inner_text()
    assert "ask an admin to unlock you" in alert.inner_text()
    shots(page, "01-locked-out")
    assert page.console_errors == []


@pytest.mark.bucket
def test_with_a_bucket_videos_posters_and_photos_load_from_its_signed_urls(
    bucket, phone, maintainer_login, machine, tmp_path, shots
):
    """/media/ redirects to the bucket (moto's S3 server, another origin): the policy's
    media-src and img-src must let the browser follow."""
    entry = LogEntry.objects.create(machine=machine, text="Rebuilt the flipper")
    video = LogEntryMedia.objects.create(log_entry=entry, kind="video", transcode_status="ready")
    mp4 = clips.android_h264_mp4(tmp_path / "v.mp4", seconds=2).read_bytes()
    jpeg = clips.photo_jpeg(tmp_path / "p.jpg", size=(320, 240)).read_bytes()
    video.transcoded_file.save("videos/v.mp4", ContentFile(mp4), save=False)
    video.poster_file.save("posters/p.jpg", ContentFile(jpeg), save=False)
    video.save()
    photo = LogEntryMedia.objects.create(log_entry=entry, kind="photo", transcode_status="ready")
    photo.file.save("photo.jpg", ContentFile(jpeg))
    assert bucket.object_keys()  # really in the bucket, not on disk

    page = phone
    maintainer_login(page)
    page.goto(entry.get_absolute_url())
    img = page.locator(".tile img")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('.tile img').complete")
    assert img.evaluate("img => img.naturalWidth") == 320
    played = page.evaluate(
        """async () => {
            const v = document.querySelector('.tile video');
            v.muted = true;
            await v.play();
            await new Promise((r) => setTimeout(r, 800));
            return {readyState: v.readyState, now: v.currentTime, src: v.currentSrc};
        }"""
    )
    assert played["readyState"] >= 2 and played["now"] > 0, played
    shots(page, "01-media-from-the-bucket")
    assert page.console_errors == []
