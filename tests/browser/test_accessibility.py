"""The main pages pass axe-core (no serious or critical violations), every control is labelled,
reachable with the keyboard, and big enough for a thumb."""

import pytest

from tests.browser.conftest import run_axe
from the_flip.apps.maintenance.models import LogEntry, LogEntryMedia

pytestmark = pytest.mark.browser

# Apple's and Google's guidance is 44-48 px; WCAG 2.2 AA asks for at least 24.
MIN_TARGET = 44

CONTROLS = "a[href], button, input:not([type=hidden]), textarea, select"


def _too_small(page) -> list[dict]:
    return page.evaluate(
        """([selector, min]) => [...document.querySelectorAll(selector)]
            .filter((n) => n.offsetParent !== null)
            .map((n) => ({what: n.outerHTML.slice(0, 80), w: n.getBoundingClientRect().width,
                          h: n.getBoundingClientRect().height}))
            .filter((t) => t.h < min || t.w < min)""",
        [CONTROLS, MIN_TARGET],
    )


def _unreached_by_tab(page) -> list[str]:
    """Tab from the top of the page; return the visible controls focus never reached."""
    page.evaluate(
        f"""() => document.querySelectorAll('{CONTROLS}').forEach(
                (n, i) => n.setAttribute('data-tab-id', i))"""
    )
    wanted = set(
        page.evaluate(
            f"""() => [...document.querySelectorAll('{CONTROLS}')]
                .filter((n) => n.offsetParent !== null && !n.disabled)
                .map((n) => n.dataset.tabId)"""
        )
    )
    page.locator("body").focus()
    reached = set()
    for _ in range(len(wanted) + 5):
        page.keyboard.press("Tab")
        tab_id = page.evaluate("() => document.activeElement?.dataset?.tabId ?? null")
        if tab_id is not None:
            reached.add(tab_id)
    missing = wanted - reached
    return page.evaluate(
        "(ids) => ids.map((i) => document.querySelector(`[data-tab-id='${i}']`).outerHTML)",
        sorted(missing),
    )


def _check(page, shots, name: str) -> dict:
    shots(page, name, full_page=True)
    problems = {
        "axe": run_axe(page),
        "too small": _too_small(page),
        "not reachable by Tab": _unreached_by_tab(page),
    }
    return {page.url + " " + k: v for k, v in problems.items() if v}


def test_main_pages_are_accessible_on_a_phone(
    phone, maintainer_login, machine, maintainer, shots, photo
):
    page = phone
    problems = {}
    page.goto("/accounts/login/")
    problems |= _check(page, shots, "login")
    maintainer_login(page)
    problems |= _check(page, shots, "machines")

    entry = LogEntry.objects.create(machine=machine, author=maintainer, text="Flipper coil")
    ready = entry.media.create(
        kind="photo", transcode_status="ready", progress=100, original_name="IMG_1.JPG"
    )
    ready.file.save("photo.jpg", open(photo, "rb"))  # noqa: SIM115 (the field closes it)
    entry.media.create(kind="video", transcode_status="processing", progress=40)
    entry.media.create(kind="video", transcode_status="failed", error="Not a video we can read.")

    page.goto(machine.get_absolute_url())
    page.wait_for_selector(".tile-actions button")
    problems |= _check(page, shots, "machine")
    page.goto(entry.get_absolute_url())
    page.wait_for_selector(".tile-actions button")
    problems |= _check(page, shots, "log-entry")
    page.goto(f"/machines/{machine.slug}/log/new/")
    problems |= _check(page, shots, "new-entry")
    assert not problems, problems
    assert LogEntryMedia.objects.count() == 3
