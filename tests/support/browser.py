"""A real headless Chromium driven through chromedriver (Debian's ``chromium`` and
``chromium-driver``, installed by ``scripts/system-packages test``).

``browser`` (module scope) starts one browser for a test module with a fresh profile and a
download folder; ``console`` helpers wait for states with WebDriverWait, never sleep.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

#: Headless, and nothing that reaches out to the internet: without the background-networking
#: flags Chromium's own connections are refused by a closed network and it logs errors.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1280,800",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


class Browser:
    """A Chromium session and the folder its downloads land in."""

    def __init__(self, profile: Path, downloads: Path) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        driver = shutil.which("chromedriver")
        if not binary or not driver:
            pytest.fail("chromium and chromedriver are not installed (run scripts/system-packages test)")
        options = Options()
        options.binary_location = binary
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": str(downloads), "download.prompt_for_download": False},
        )
        self.downloads = downloads
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.set_window_size(1280, 800)

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait for ``condition(driver)`` to be true; fail with ``what`` after ``timeout``."""
        return WebDriverWait(
            self.driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
        ).until(condition, message=f"timed out after {timeout}s waiting for {what}")

    def click(self, css: str, timeout: float = 10.0) -> None:
        """Click the visible element ``css``, found again if the page redrew it meanwhile."""

        def clicked(d: Any) -> bool:
            element = _visible(d, css)
            if not element:
                return False
            element.click()
            return True

        self.wait(clicked, timeout, f"{css} to click")

    def find(self, css: str, timeout: float = 10.0) -> WebElement:
        return self.wait(lambda d: _visible(d, css), timeout, f"{css} to show")

    def text(self, css: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def wait_text(
        self, css: str, predicate: Callable[[str], bool], timeout: float = 10.0, what: str = ""
    ) -> str:
        def check(d: Any) -> str | bool:
            found = d.find_elements(By.CSS_SELECTOR, css)
            value = found[0].text if found else ""
            return value if predicate(value) else False

        return str(self.wait(check, timeout, what or f"the text of {css}"))

    def open(self, url: str) -> None:
        self.driver.get(url)

    def go(self, page: str) -> None:
        """Follow the nav link to ``page`` and wait for the page's first refresh."""
        self.click(f'#nav a[data-page="{page}"]')
        self.wait(
            lambda d: d.execute_script(
                "return location.hash === arguments[0] && !!document.getElementById('main').dataset.updated",
                f"#/{page}",
            ),
            what=f"the {page} page",
        )

    def log(self) -> list[dict[str, Any]]:
        """The browser console's entries since the last call."""
        return list(self.driver.get_log("browser"))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def quit(self) -> None:
        self.driver.quit()


def _visible(driver: Any, css: str) -> WebElement | bool:
    for element in driver.find_elements(By.CSS_SELECTOR, css):
        if element.is_displayed():
            return element
    return False


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the test module, on a fresh profile."""
    root = tmp_path_factory.mktemp("chromium")
    (root / "downloads").mkdir()
    session = Browser(root / "profile", root / "downloads")
    yield session
    session.quit()
