"""UI fixtures: the hub app served by uvicorn on a free loopback port over a seeded SQLite
database, and Debian's Chromium driven headless by Selenium (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from hub.conftest import _migrated, clock, db, db_url, pg_url  # noqa: F401  (SQLite and PostgreSQL)

from support import cheap_hasher, ui_login, wait_until
from thanthien.broker import free_port
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.session import Database
from thanthien.hub.settings import HubSettings
from web.town import PASSWORDS, TZ, Town, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("THANTHIEN_TEST_ARTIFACTS", "var/test-artifacts")) / "web"
POLL_S = 0.2


@pytest.fixture(scope="package", autouse=True)
def _cheap_hashing_for_the_ui() -> Iterator[None]:
    """Every page test logs in, some several times, through the browser too (``cheap_hasher``)."""
    with cheap_hasher():
        yield


@dataclass
class HubServer:
    url: str
    ctx: HubContext
    town: Town


def _settings(data_dir: Path) -> HubSettings:
    return HubSettings(hub={"data_dir": str(data_dir), "timezone": TZ, "site_name": "UBND xã Nà Hin"},
                       http={"secret_key": "web-test-secret-key-0123456789"})



@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """The hub (API and UI) on a free port over a seeded database, for the whole session."""
    data_dir = tmp_path_factory.mktemp("web-hub")
    settings = _settings(data_dir)
    database = Database(settings.database_url)
    database.migrate()
    ctx = HubContext(settings=settings, db=database)
    with cheap_hasher():  # this fixture outlives a package's fixtures: the town's users hashed cheaply
        town = seed(ctx)
    app = create_app(settings, database, ctx=ctx)
    app.state.ui_poll_s = POLL_S
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2, lifespan="off"))
    thread = threading.Thread(target=server.run, name="web-hub", daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, timeout=15), "the hub did not start"
    yield HubServer(url=f"http://127.0.0.1:{port}", ctx=ctx, town=town)
    server.should_exit = True
    thread.join(timeout=10)
    database.dispose()


@pytest.fixture
def client(hub_server: HubServer) -> Iterator[TestClient]:
    """An in-process client on the same app state (for status codes and downloads)."""
    app = create_app(hub_server.ctx.settings, hub_server.ctx.db, ctx=hub_server.ctx)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login_client(client: TestClient, role: str) -> TestClient:
    """The client logged in to the web UI as the town's user of that role."""
    return ui_login(client, role, PASSWORDS[role])


# -- the browser ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _driver(tmp_path_factory: pytest.TempPathFactory, hub_server: HubServer) -> Iterator[object]:
    """One browser for the session; it quits before the hub stops (so no live stream is left open)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"Debian's chromium and chromium-driver are not installed ({CHROMIUM}, {CHROMEDRIVER}); "
                    "run scripts/system-deps.sh as root (make setup) to install them")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    profile = tempfile.mkdtemp(prefix="thanthien-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
                 "--lang=vi-VN"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(_driver: object, hub_server: HubServer) -> Iterator[object]:
    """The session's browser, logged out, at desktop size."""
    driver = _driver
    driver.get(hub_server.url + "/ui/login")  # type: ignore[attr-defined]
    driver.delete_all_cookies()  # type: ignore[attr-defined]
    driver.set_window_size(1280, 900)  # type: ignore[attr-defined]
    yield driver
    driver.get("about:blank")  # closes any live-update stream of the last page  # type: ignore[attr-defined]


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[object, str], Path]:
    """Saves a screenshot as a test artifact: var/test-artifacts/web/<test>-<name>.png."""
    def take(driver: object, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{name}.png".replace("/", "_")
        driver.save_screenshot(str(path))  # type: ignore[attr-defined]
        return path
    return take
