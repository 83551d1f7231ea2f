"""Browser helpers: log in through the form, find things, wait for them."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from web.town import PASSWORDS

WAIT_S = 10


def wait(driver: Any, timeout: float = WAIT_S) -> WebDriverWait:
    return WebDriverWait(driver, timeout)


def log_in(driver: Any, base: str, role: str, password: str | None = None) -> None:
    driver.get(base + "/ui/login")
    driver.find_element(By.NAME, "username").send_keys(role)
    driver.find_element(By.NAME, "password").send_keys(password or PASSWORDS[role])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(driver).until(lambda d: "/ui/login" not in d.current_url
                       or d.find_elements(By.CSS_SELECTOR, ".notice.error"))


def css(driver: Any, selector: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, selector)


def css_all(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def visible(driver: Any, selector: str) -> Any:
    return wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def menu(driver: Any) -> list[str]:
    return [a.text for a in css_all(driver, "nav.menu a")]


def live_connected(driver: Any) -> None:
    """Waits until the page's live-update stream is open."""
    script = "return document.body.getAttribute('data-live-open')"
    wait(driver).until(lambda d: d.execute_script(script) == "1")


def attr(driver: Any, selector: str, name: str) -> str | None:
    """An attribute read in one step (live updates may replace the element between two)."""
    return driver.execute_script("var e = document.querySelector(arguments[0]);"
                                 "return e ? e.getAttribute(arguments[1]) : null;", selector, name)


def text(driver: Any, selector: str) -> str | None:
    return driver.execute_script("var e = document.querySelector(arguments[0]);"
                                 "return e ? e.textContent.trim() : null;", selector)


def overflow_px(driver: Any) -> int:
    """How far the page is wider than the window (0 when nothing sticks out sideways)."""
    return int(driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))
