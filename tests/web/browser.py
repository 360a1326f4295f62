"""Headless Chromium for the web client's tests, through Selenium.

Only the machine's own browser and driver are used (the Debian `chromium` and
`chromium-driver` packages, which `.ci/run` installs): both paths are given
to Selenium, and Selenium Manager is told to stay offline, so nothing is
downloaded when the tests run. Without them the tests are skipped, except in
CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

WAIT = 10.0
T = TypeVar("T")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)

needs_browser = pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"),
    reason="needs chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@contextmanager
def chromium(
    width: int = 1200, height: int = 800, *, ignore_certificates: bool = False
) -> Iterator[webdriver.Chrome]:
    """A headless Chromium, closed afterwards (`ignore_certificates`: for a test
    server whose certificate no authority of the browser's signed)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--lang=en-GB",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if ignore_certificates:
        options.add_argument("--ignore-certificate-errors")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for tests
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    # A desktop window is at least 500 pixels wide: a phone's width is emulated.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(check: Callable[[], T | None], timeout: float = WAIT, what: str = "") -> T:
    """Poll the page until `check` gives something true (the page changes on its
    own thread: there is no event to wait on from here)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout} s: {what}") from last
        time.sleep(0.05)


class Page:
    """One browser tab of the web client."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url
        driver.get(url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def login(self, nick: str, room: str = "lobby", password: str = "") -> None:
        for css, value in (("#login-nick", nick), ("#login-password", password)):
            box = self.find(css)
            box.clear()
            box.send_keys(value)
        room_box = self.find("#login-room")
        room_box.clear()
        room_box.send_keys(room)
        self.find("#login-button").click()
        wait_until(lambda: self.find("#title-name").text == room, what=f"{nick} in {room}")

    def type(self, text: str) -> None:
        """Type into the message box and press Enter (Shift+Enter for line breaks)."""
        box = self.find("#composer-text")
        lines = text.split("\n")
        for index, line in enumerate(lines):
            box.send_keys(line)
            if index < len(lines) - 1:
                box.send_keys(Keys.SHIFT, Keys.ENTER)
        box.send_keys(Keys.ENTER)

    def messages(self) -> list[dict[str, str]]:
        """The messages shown, as the page shows them: id, nick, text."""
        shown: list[dict[str, str]] = self.js(
            """return [...document.querySelectorAll('#messages li.msg')].map(li => ({
                id: li.dataset.id,
                nick: li.querySelector('.nick').textContent,
                text: li.querySelector('.text').textContent}));"""
        )
        return shown

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages()]

    def wait_text(self, text: str, timeout: float = WAIT) -> None:
        wait_until(lambda: text in self.texts(), timeout, what=repr(text))

    def open(self, kind: str, name: str) -> None:
        """Select a room or a direct conversation in the sidebar (unfolded first at
        phone width)."""
        if not self.find("#sidebar").is_displayed():
            self.find("#toggle-rooms").click()
        self.find(f"#{kind}-list button[data-name='{name}']").click()
        wait_until(lambda: self.find("#title-name").text == name, what=name)

    def console_errors(self) -> list[str]:
        """What the page logged as errors (a CSP violation would be one)."""
        entries: list[dict[str, str]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    def unread(self, kind: str, name: str) -> int:
        badges = self.find_all(f"#{kind}-list button[data-name='{name}'] .unread")
        return int(badges[0].text) if badges else 0
