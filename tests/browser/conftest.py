"""Browser tests: Playwright (pytest-playwright) driving the system's Chromium — Debian's `chromium`
package at /usr/bin/chromium, or CHROMIUM_PATH — never a browser Playwright downloads. The app is served by
Granian on loopback against the test database (tests.worker.served_web), so tests are transactional.

Where no Chromium is found every browser test is skipped with one plain reason (`make test` prints it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import factories
from tests.worker import served_web

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory's  # noqa: S105

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls (fixtures, checks)
# are still plain synchronous code, which Django would otherwise refuse under a running loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def chromium_path() -> str | None:
    """CHROMIUM_PATH when set (and only it), else Debian's Chromium."""
    wanted = os.environ.get("CHROMIUM_PATH")
    paths = (wanted,) if wanted else (*CANDIDATES, shutil.which("chromium") or "")
    for path in paths:
        if path and os.access(path, os.X_OK):
            return path
    return None


NO_CHROMIUM = "browser tests skipped: no Chromium found (install Debian's `chromium` package or set CHROMIUM_PATH)"


def pytest_collection_modifyitems(config, items):
    if chromium_path() is not None:
        return
    skip = pytest.mark.skip(reason=NO_CHROMIUM)
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def base_url():
    """Ours, replacing pytest-base-url's (which pytest-playwright pulls in): each test serves the app on a
    port of its own and uses absolute URLs, and theirs trips pytest's deprecation of session fixtures
    defined as methods, an error once a test module has turned warnings into errors."""
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": chromium_path(), "args": ["--no-sandbox"]}


@pytest.fixture
def app_url(transactional_db, settings):
    with served_web(REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-browser") as url:
        yield url


@pytest.fixture
def agent_user(org):
    membership = factories.MembershipFactory(organization=org)
    return membership.user


def sign_in(page, app_url: str, user) -> None:
    page.goto(f"{app_url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{app_url}/")


def screenshot(page, name: str, tmp_path: Path) -> Path:
    """Into docs/screenshots/ when PARLEY_SCREENSHOTS=1 (to refresh the README's pictures), else tmp."""
    folder = SCREENSHOTS if os.environ.get("PARLEY_SCREENSHOTS") == "1" else tmp_path
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
