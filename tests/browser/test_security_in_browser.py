"""In a real browser the strict Content-Security-Policy blocks nothing the site needs (its pages
and the admin), and a maintainer locked out by the login throttle reads why."""

import pytest

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
