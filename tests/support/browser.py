"""A real browser for the tests that look at pages as a person would: Debian's headless
Chromium, driven by Selenium through Debian's chromedriver (both from apt, installed by
``.ci/run``; Selenium Manager is never asked to find or download anything), and the single
process as a real uvicorn process. Swagger UI's page is driven through ``SwaggerUi``.

Without Chromium the browser tests are skipped with one line; under ``CI=true`` that is a
failure instead. Screenshots land in ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from devstack import ServerProcess, free_port, uvicorn_process
from tests.support.distributed import ROOT, in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1700",
)
WAIT = 30.0
PASSWORD_FLOW_BOX = (
    "//div[contains(@class, 'auth-container')][.//h4[contains(., '(OAuth2, password)')]]"
)


def browser_problem() -> str | None:
    """Why no browser test can run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"no {path} (apt-get install {package})"
    return None


def require_browser() -> None:
    """Skip (in CI: fail) when Chromium or its driver is missing."""
    problem = browser_problem()
    if problem is None:
        return
    message = f"browser tests unavailable: {problem}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with a profile of its own, ended afterwards."""
    require_browser()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # The driver's path given explicitly: Selenium Manager is skipped, nothing downloaded.
        service = Service(executable_path=str(CHROMEDRIVER))
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(WAIT)
            yield driver
        finally:
            driver.quit()


def screenshot(driver: webdriver.Chrome, name: str, *, showing: WebElement | None = None) -> Path:
    """What the window shows, as a PNG under ``test-artifacts/`` for a person to look at;
    scrolled so that ``showing`` starts at the top."""
    ARTIFACTS.mkdir(exist_ok=True)
    if showing is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", showing)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@contextlib.contextmanager
def single_process_server(folder: Path) -> Iterator[ServerProcess]:
    """The single process, as ``make run`` starts it, on a free port and a fresh data folder."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in {"HOME", "LANG", "LC_ALL", "TMPDIR", "PATH"}
    }
    env.update(DATA_DIR=str(folder / "data"), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    server = uvicorn_process(
        "single-process",
        "app.main:app",
        port=free_port(),
        env=env,
        log_path=folder / "single-process.log",
        cwd=ROOT,
        options=("--no-access-log",),
    )
    with server.serving():
        yield server


class SwaggerUi:
    """Swagger UI's page, driven as a person does: Authorize, Try it out, Execute."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url

    def wait(self, within: float = WAIT) -> WebDriverWait[webdriver.Chrome]:
        return WebDriverWait(self.driver, within)

    def open(self) -> None:
        self.driver.get(self.url)
        self.wait().until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize")))

    def authorize(self, username: str, password: str) -> None:
        """The OAuth2 password flow of the Authorize dialog; fails with the dialog's error."""
        error = self.try_authorize(username, password)
        assert error is None, f"Authorize failed: {error}"
        self.driver.find_element(By.XPATH, PASSWORD_FLOW_BOX).find_element(
            By.CSS_SELECTOR, "button.btn-done"
        ).click()
        self.wait().until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))

    def try_authorize(self, username: str, password: str) -> str | None:
        """Fill in and send the Authorize dialog's password flow; the error it shows, or None
        once it says the user is authorized. The dialog stays open."""
        self.driver.find_element(By.CSS_SELECTOR, "button.authorize").click()
        self.wait().until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
        # The dialog lists every scheme; the password flow's box is the one to fill in.
        dialog = self.driver.find_element(By.XPATH, PASSWORD_FLOW_BOX)
        dialog.find_element(By.ID, "oauth_username").send_keys(username)
        dialog.find_element(By.ID, "oauth_password").send_keys(password)
        dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.authorize").click()
        try:
            self.wait().until(
                lambda _: (
                    dialog.find_elements(By.XPATH, ".//button[normalize-space()='Logout']")
                    or dialog.find_elements(By.CSS_SELECTOR, ".errors")
                )
            )
        except TimeoutException:
            raise AssertionError(f"Authorize did not finish:\n{dialog.text}") from None
        errors = dialog.find_elements(By.CSS_SELECTOR, ".errors")
        return " ".join(error.text for error in errors) if errors else None

    def operation(self, tag: str, operation_id: str) -> WebElement:
        return self.driver.find_element(By.ID, f"operations-{tag}-{operation_id}")

    def execute(
        self, tag: str, operation_id: str, *, body: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        """Try it out, Execute; the live response's status and body text."""
        block = self.operation(tag, operation_id)
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        try_out = self.wait().until(lambda _: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
        try_out.click()
        if body is not None:
            editor = block.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
            editor.send_keys(Keys.CONTROL, "a")
            editor.send_keys(Keys.DELETE)
            editor.send_keys(json.dumps(body, separators=(",", ":")))
        block.find_element(By.CSS_SELECTOR, "button.execute").click()
        status = self.wait().until(
            lambda _: block.find_element(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
        )
        response = block.find_element(By.CSS_SELECTOR, ".live-responses-table .response")
        return status.text.strip(), response.text


def is_blank(driver: webdriver.Chrome) -> bool:
    return not driver.execute_script("return document.body.innerText.trim()")
