"""The search page in a real headless browser: Debian's chromium and chromium-driver,
driven by Selenium, against a server listening on 127.0.0.1.

In CI (``CI=true``) a missing browser fails these tests; on a developer machine they are
skipped with one line saying how to install it. Nothing is downloaded at run time
(Selenium Manager is never asked: the driver's path is given).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web

from retrieval.config import Settings
from server.app import make_app
from server.corpora import Corpora
from server.security import Keys
from tests.fakes import FakeEmbedder
from tests.helpers import CORPUS, build_index, with_search

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL_HINT = "headless browser missing: apt-get install -y chromium chromium-driver"

ANSWERED = "How many hives do the allotment beekeepers keep?"
OFF_TOPIC = "What is the price of a season ticket to the moon?"
HOSTILE = {
    "id": "hostile",
    "title": "Seals <script>alert('title')</script>",
    "text": "The sandbank seals <script>alert(1)</script> were counted: twelve grey seals."
    "\n\n<img src=x onerror=alert(2)> A second paragraph.",
}


def _browser_available() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(DRIVER)


def _chrome(javascript: bool) -> Any:
    if not _browser_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the browser tests: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1366,900")
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    browser = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    browser.set_page_load_timeout(30)
    return browser


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """A browser with JavaScript on (so a script that got through would run)."""
    browser = _chrome(javascript=True)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def no_js_driver() -> Iterator[Any]:
    """A browser with JavaScript off: the page must work without it."""
    browser = _chrome(javascript=False)
    yield browser
    browser.quit()


class ServerThread:
    """The application on a real socket on 127.0.0.1, its event loop on a thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app)
        self.port = 0

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, **params: str) -> str:
        return f"http://127.0.0.1:{self.port}/" + (f"?{urlencode(params)}" if params else "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    folder = tmp_path_factory.mktemp("browser")
    import json

    extra = folder / "hostile.json"
    extra.write_text(json.dumps(HOSTILE), encoding="utf-8")
    build_index(folder / "index", [CORPUS, extra])
    # Calibrated for the fake model: the beekeepers question is answered, the moon is not.
    settings = with_search(Settings(index_dir=folder / "index"), min_confidence=0.6)
    corpora = Corpora({"default": settings}, lambda s: FakeEmbedder())
    with ServerThread(make_app(corpora, settings.serve, Keys())) as running:
        for _ in range(500):
            if corpora.ready:
                break
            threading.Event().wait(0.01)
        assert corpora.ready
        yield running


def _wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def test_type_a_question_read_the_quote_and_follow_more_results(
    no_js_driver: Any, server: ServerThread
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys as Key

    driver = no_js_driver
    driver.get(server.url())
    box = driver.switch_to.active_element  # focused on arrival: type straight away
    assert box.get_attribute("id") == "q"
    label = driver.find_element(By.CSS_SELECTOR, "label[for=q]")
    assert label.text == "Question"
    box.send_keys(ANSWERED, Key.ENTER)
    quote = _wait_for(driver, "blockquote.quote")
    assert "forty hives" in quote.text
    # A shareable address: the question only (the empty filters are left out).
    assert parse_qs(urlsplit(driver.current_url).query) == {"q": [ANSWERED]}
    citation_link = driver.find_element(By.CSS_SELECTOR, ".cite a")
    assert citation_link.text == "open at the passage"
    assert citation_link.get_attribute("href").startswith(
        "https://fenwick-courier.example/nature/beekeepers#:~:text="
    )
    highlight = driver.find_element(By.CSS_SELECTOR, "article.result mark")
    assert highlight.text and highlight.text in quote.text
    shown = len(driver.find_elements(By.CSS_SELECTOR, "article.result"))
    if path := os.environ.get("CITEBOT_SCREENSHOT"):
        driver.save_screenshot(path)
    more = driver.find_element(By.CSS_SELECTOR, "a.more")
    held_back = int(more.text.split("(")[1].rstrip(")"))
    more.send_keys(Key.ENTER)  # by keyboard
    _wait_for(driver, "#more")
    assert len(driver.find_elements(By.CSS_SELECTOR, "article.result")) == shown + held_back
    assert driver.find_element(By.ID, "more").text == "More results"


def test_not_covered_shows_the_nearest_articles(driver: Any, server: ServerThread) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url(q=OFF_TOPIC))
    notice = _wait_for(driver, ".not-covered .notice")
    assert notice.text.startswith("The articles do not seem to cover")
    nearest = driver.find_elements(By.CSS_SELECTOR, ".not-covered li")
    assert nearest and all(item.text for item in nearest)


def test_an_article_holding_markup_is_shown_as_text(driver: Any, server: ServerThread) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    driver.get(server.url(q="how many grey seals were counted on the sandbank", all="1"))
    _wait_for(driver, "blockquote.quote")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is the check
    page_text = driver.find_element(By.TAG_NAME, "main").text
    assert "<script>alert(1)</script>" in page_text
    assert "<script>alert('title')</script>" in page_text
    assert not driver.find_elements(By.CSS_SELECTOR, "main script, main img")


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 900)])
def test_fits_a_phone_and_a_laptop(
    driver: Any, server: ServerThread, width: int, height: int
) -> None:
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, height)
    try:
        driver.get(server.url(q=ANSWERED))
        _wait_for(driver, "blockquote.quote")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0  # nothing wider than the screen
        box = driver.find_element(By.ID, "q")
        assert box.size["width"] >= min(width * 0.5, 300)
        main = driver.find_element(By.TAG_NAME, "main")
        assert main.size["width"] <= min(width, 46 * 16 + 1)
    finally:
        driver.set_window_size(1366, 900)


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "no"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        _chrome(javascript=True)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _chrome(javascript=True)
