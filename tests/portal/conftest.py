"""Browser fixtures: the API serving the built portal over loopback, Debian's Chromium
driven by Playwright (never a downloaded browser), logging in, and screenshots.

Skipped, saying what is missing, only when /usr/bin/chromium or portal/dist is absent;
`bash scripts/bootstrap.sh` installs the one and builds the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tessera.api.portal import PORTAL_DIST
from tessera.config import Settings
from tessera.runtime import Runtime, ensure_admin_token

CHROMIUM = Path("/usr/bin/chromium")
LOCALES = Path(__file__).resolve().parents[2] / "portal" / "src" / "locales"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A key i18next could not find is shown as itself: `vms:field.name`.
_NAMESPACES = "|".join(sorted(f.stem for f in (LOCALES / "en").glob("*.json")))
RAW_KEY = re.compile(rf"\b(?:{_NAMESPACES}):[A-Za-z_]+(?:\.[A-Za-z_]+)+\b")
TIMEOUT_MS = 30_000  # a loaded 2-core machine runs the lab, the API and Chromium at once


def text(key: str, lng: str, **values: object) -> str:
    """The portal's string `ns:dotted.key` in `lng`, as the UI shows it."""
    ns, _, dotted = key.partition(":")
    node: object = json.loads((LOCALES / lng / f"{ns}.json").read_text(encoding="utf-8"))
    for part in dotted.split("."):
        assert isinstance(node, dict), key
        node = node[part]
    assert isinstance(node, str), key
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(values[m.group(1)]), node)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: bash scripts/bootstrap.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The lab vCenter's simulated hosts are small and already full of VMs: overcommit
    them, as tests/tasks/test_scheduled_create.py does, so a new VM has somewhere to go;
    and retry an unreachable pool quickly."""
    return Settings(
        data_dir=tmp_path / "state",
        watch_enabled=False,
        cpu_allocation_ratio=16.0,
        ram_allocation_ratio=8.0,
        task_retry_interval_s=0.2,  # a pool taken down fails its sync in seconds
    )


@pytest.fixture
def portal(live_api: str) -> str:
    """The API with the built portal over real HTTP on loopback; its URL."""
    if not (PORTAL_DIST / "index.html").is_file():
        pytest.skip(f"the portal is not built ({PORTAL_DIST}): bash scripts/bootstrap.sh")
    return live_api


@pytest.fixture
def admin_password(portal: str, runtime: Runtime) -> str:
    return runtime.settings.admin_password_file.read_text().strip()


@pytest.fixture
def admin_api(portal: str, runtime: Runtime) -> Iterator[httpx.Client]:
    """The API as the platform admin, to set up what a test is not about."""
    token = ensure_admin_token(runtime.settings)
    with httpx.Client(
        base_url=portal, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def new_page(browser: Browser, portal: str) -> Iterator[Callable[..., Page]]:
    """`new_page(locale="en-US")`: a page in a fresh context (its own session storage),
    failing the test on any uncaught script error."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(locale: str = "en-US") -> Page:
        context = browser.new_context(
            base_url=portal, locale=locale, viewport={"width": 1440, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def login(page: Page, user: str, password: str) -> None:
    """Log in through the login page and wait for the app's frame."""
    page.goto("/login")
    page.locator("#user").fill(user)
    page.locator("#password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("user-menu").wait_for()


def settle(page: Page) -> None:
    """Wait until no spinner shows. (Not "networkidle": the live task stream stays open.)"""
    page.locator(".ant-spin-spinning, .ant-skeleton-active").first.wait_for(state="detached")
    page.wait_for_timeout(300)


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """`shoot(page, "vms-en")`: a full-page PNG under the test's tmp dir, after checking
    that no untranslated key shows on the page."""
    folder = tmp_path / "screenshots"
    folder.mkdir()

    def take(page: Page, name: str) -> Path:
        settle(page)
        raw = RAW_KEY.findall(page.locator("body").inner_text())
        assert not raw, f"{name}: untranslated keys on the page: {raw}"
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
