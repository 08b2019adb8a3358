"""A real browser for the tests: the operating system's headless Chromium (Debian's
``chromium`` package), driven by Playwright through ``executable_path``. Playwright's own
browser downloads (``playwright install``) are never used.

Where Chromium is: ``$SYNCUP_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on the
``PATH``, else ``/usr/bin/chromium``. Without one the browser tests are skipped on a
developer's machine, with the reason, and fail under CI (``CI=true``), as the PostgreSQL tests
do (tests/conftest.py); ``.ci/run`` installs the package.

Screenshots go under ``$SYNCUP_TEST_ARTIFACTS`` (default ``test-artifacts/``, ignored by git),
in ``screenshots/``: a CI run keeps that folder as the run's artifacts.

Use: the ``browser`` fixture (one Chromium per test), :func:`open_page` for a page that records
dialogs and failed requests, :func:`screenshot` to save one.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright

CHROMIUM_ENV = "SYNCUP_CHROMIUM"
ARTIFACTS_ENV = "SYNCUP_TEST_ARTIFACTS"
ROOT = Path(__file__).resolve().parent.parent
# Chromium, once started, answers within this; a hung page fails the test instead of hanging it.
TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    """The system Chromium's executable, or None."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def require_chromium() -> str:
    path = chromium_path()
    if path is not None:
        return path
    reason = (
        f"no Chromium found (set {CHROMIUM_ENV}, or install the system package: "
        "apt-get install chromium)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
    pytest.skip(reason)


def artifacts_dir() -> Path:
    base = Path(os.environ.get(ARTIFACTS_ENV) or ROOT / "test-artifacts")
    folder = base / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless system Chromium for one test."""
    executable = require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page with what it did that a test must see: dialogs (an ``alert`` from injected
    script would be one) and console errors (a Content-Security-Policy refusal is one)."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


async def open_page(browser: Browser, base_url: str) -> Watched:
    """A fresh browser context (its own cookies) and a page in it."""
    context = await browser.new_context(base_url=base_url, java_script_enabled=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    watched = Watched(page)

    async def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda message: (
            watched.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    return watched


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``<artifacts>/screenshots/<name>.png``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    path = artifacts_dir() / f"{safe}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
