"""Headless Chromium driven by Selenium, from the Debian packages `chromium` and `chromium-driver`, fully offline."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No sandbox: CI runs as root in a container. The rest keep Chromium from calling home (updates, sync, QUIC probes).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium chromium-driver"


def browser_missing() -> str | None:
    """Why no browser test can run here (one line naming the fix), or None when Chromium, its driver and Selenium are present."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        return f"{' and '.join(missing)} not found: {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


@contextmanager
def chromium(profile_dir: Path, width_px: int = 1600, height_px: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile in `profile_dir`, quit on exit.

    The driver binary and the browser binary are named explicitly, so Selenium Manager never looks for (or downloads)
    either of them.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}", f"--window-size={width_px},{height_px}"):
        options.add_argument(flag)
    # Selenium Manager would otherwise report usage statistics on start.
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll `condition(driver)` every 0.25 s until it is truthy; returns its value.

    Raises selenium's TimeoutException naming `what`, the page's URL and the start of the text it showed.
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        # Elements the React app has not drawn yet, or has just redrawn, mean "not yet".
        return WebDriverWait(
            driver,
            timeout_s,
            poll_frequency=0.25,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(condition)
    except TimeoutException as timeout:
        shown = visible_text(driver)
        raise TimeoutException(
            f"after {timeout_s:.0f} s, still no {what} on {driver.current_url}; page text: {shown[:1500]!r}"
        ) from timeout


def visible_text(driver: WebDriver) -> str:
    """The text the page shows (document.body.innerText), '' before it has a body."""
    return driver.execute_script("return document.body ? document.body.innerText : ''") or ""


def wait_for_text(driver: WebDriver, *texts: str, timeout_s: float = 30.0) -> str:
    """Wait until every one of `texts` is in the page's visible text; returns that text."""
    wait_until(driver, lambda d: all(t in visible_text(d) for t in texts), f"{list(texts)} (all of them)", timeout_s)
    return visible_text(driver)
