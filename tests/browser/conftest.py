"""A phone in a real browser: Debian's chromium driven by Playwright, against the real gunicorn
(deploy/gunicorn.conf.py) and a real huey consumer, both on the test database.

No browser download: `playwright install` cannot work on a closed network, so the tests drive
the system's /usr/bin/chromium. Without the background-networking flags it hangs here.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ROOT, require, stop_process, subprocess_env

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("THE_FLIP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}  # fmt: skip
SCREENSHOTS = Path(os.environ.get("THE_FLIP_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))
AXE_JS = ROOT / "tests" / "browser" / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "flippers-and-coils"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def collected_static(django_db_setup):
    """gunicorn serves static files with whitenoise from STATIC_ROOT, as in production."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "the_flip.settings.test"},
        check=True,
        timeout=120,
    )


@pytest.fixture
def live_app(transactional_db, collected_static):
    """gunicorn with the project's gunicorn.conf.py on a free port; yields its base URL."""
    port = _free_port()
    log_path = Path(settings.DATA_DIR) / f"gunicorn-{time.monotonic_ns()}.log"
    env = subprocess_env(PORT=str(port), BIND_HOST="127.0.0.1", WEB_CONCURRENCY="1")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
             "the_flip.wsgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base_url + "/accounts/login/", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise AssertionError(
                    "gunicorn did not start:\n" + log_path.read_text()[-3000:]
                ) from None
            time.sleep(0.1)
    process.log_path = log_path
    yield base_url
    stop_process(process)


@pytest.fixture(scope="module")
def chromium():
    require(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(chromium, live_app):
    """A fresh phone-sized, touch-screen browser tab pointed at the live app."""
    context = chromium.new_context(base_url=live_app, **PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    # Chromium reports what the Content-Security-Policy blocked as a console error.
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and page.console_errors.append(msg.text),
    )
    yield page
    context.close()


@pytest.fixture
def maintainer_login(maintainer):
    """Log the phone in through the real login form."""

    def login(page) -> None:
        page.goto("/")
        assert "/accounts/login/" in page.url
        page.get_by_label("Username").fill(maintainer.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")

    return login


class Shots:
    """Numbered screenshots of each step, in a folder .ci/run prints."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str, full_page: bool = False) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(SCREENSHOTS / request.node.name)


def throttle_upload(page, bytes_per_second: int | None) -> None:
    """Weak Wi-Fi: cap the upload speed with the DevTools protocol (None lifts the cap)."""
    cdp = getattr(page, "_cdp", None) or page.context.new_cdp_session(page)
    page._cdp = cdp
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 40 if bytes_per_second else 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second or -1,
        },
    )


def run_axe(page) -> list[dict]:
    """axe-core on the current page; returns the serious and critical violations."""
    require(AXE_JS.exists(), f"axe-core ({AXE_JS.relative_to(ROOT)}; make axe installs it)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated by the DevTools protocol: an injected <script> tag would be refused by
        # the page's Content-Security-Policy (as it should be).
        page.evaluate(AXE_JS.read_text())
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values:
             ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
