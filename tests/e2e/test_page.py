"""The chat page in a real browser: Debian's Chromium driven by Playwright.

Each test loads the page exactly as `ssechat serve` ships it (static files from
src/ssechat/web, no Node at run time) from a real server on a loopback port, running the
scripted model and the test pipelines of tests/pipelines.py (`cited` yields sources and
citations, `tabular` SQL, a table and a CSV link, `unsafe` markup). Only Debian's
/usr/bin/chromium is used, never a browser downloaded by `playwright install`.

Screenshots are taken in every run; with SSECHAT_UPDATE_SCREENSHOTS=1 they are written to
docs/ (docs/screenshot-chat.png, docs/screenshot-narrow.png) instead of a temporary folder,
so an ordinary test run leaves the committed pictures alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.pipelines import UNSAFE_TEXT
from tests.proxy import CuttingProxy

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, FilePayload, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
PIPELINES = ("cited", "tabular", "unsafe")
# 80 words at 0.04 s: a 3.2 s answer, long enough to watch it grow, stop it and cut it.
TEXT = " ".join(f"word{i}" for i in range(80))

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install Debian's chromium (apt-get install -y chromium)",
)

# Records every state and text of the status line (stage, reconnecting…), which may each
# show for only a few hundred milliseconds.
STATUS_LOG = """
window.__statusLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  new MutationObserver(() => {
    window.__statusLog.push([status.dataset.state, status.textContent]);
  }).observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
});
"""
LAST_ANSWER = "article.message-assistant:last-of-type"


def serve(tmp: Path, **env: str) -> Server:
    args: list[str] = []
    for name in PIPELINES:
        args += ["--pipeline", f"tests.pipelines:{name}"]
    full_env = {"SSECHAT_MODEL_BACKEND": "scripted", "SSECHAT_RETRY_MS": "300", **env}
    return start_server(tmp, full_env, args=tuple(args))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The scripted model answers TEXT, word by word."""
    started = serve(
        tmp_path_factory.mktemp("e2e"), SSECHAT_SCRIPTED_TEXT=TEXT, SSECHAT_SCRIPTED_DELAY="0.04"
    )
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def unsafe_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The scripted model answers with markup."""
    started = serve(
        tmp_path_factory.mktemp("e2e-unsafe"),
        SSECHAT_SCRIPTED_TEXT=UNSAFE_TEXT,
        SSECHAT_SCRIPTED_DELAY="0.02",
    )
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        yield browser
        browser.close()


@dataclass
class Tab:
    page: Page
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    dialogs: list[str] = field(default_factory=list)  # alert()/confirm() a script opened

    def status_log(self) -> list[tuple[str, str]]:
        return [tuple(entry) for entry in self.page.evaluate("window.__statusLog")]


def open_tab(browser: Browser, width: int = 1280, height: int = 900) -> Tab:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    tab = Tab(page)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))

    def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(STATUS_LOG)
    return tab


@pytest.fixture
def tab(chromium: Browser) -> Iterator[Tab]:
    opened = open_tab(chromium)
    yield opened
    opened.page.context.close()


def ask(page: Page, question: str, pipeline: str | None = None) -> None:
    """Send `question` and wait until its answer is on the page (so that `LAST_ANSWER` is the
    new answer, not the one before it)."""
    if pipeline is not None:
        page.select_option("#pipeline", pipeline)
    asked = page.locator("article.message-user").count()
    page.fill("#prompt", question)
    page.press("#prompt", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('article.message-assistant').length > n", arg=asked
    )


def answer(page: Page) -> Locator:
    return page.locator(LAST_ANSWER)


def answer_text(page: Page) -> str:
    text: str = page.evaluate(
        f"() => document.querySelector('{LAST_ANSWER} .part-content')?.textContent.trim() ?? ''"
    )
    return text


def wait_until(page: Page, status: str, timeout: float = 20_000) -> None:
    page.wait_for_selector(f"{LAST_ANSWER}[data-status={status}]", timeout=timeout)


def conversation_of(page: Page) -> str:
    return parse_qs(urlparse(page.url).query)["c"][0]


def stored(server: Server, conversation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{server.url}/v1/conversations/{conversation_id}", timeout=10
    ).json()
    return found


def screenshot_path(name: str, tmp_path: Path) -> Path:
    folder = DOCS if os.environ.get("SSECHAT_UPDATE_SCREENSHOTS") == "1" else tmp_path
    return folder / name


def test_an_answer_streams_into_the_page_and_grows_until_complete(tab: Tab, server: Server) -> None:
    page = tab.page
    page.goto(server.url + "/")
    assert page.title() == "ssechat"
    ask(page, "Count for me")
    lengths: list[int] = []
    deadline = time.monotonic() + 20
    while answer(page).get_attribute("data-status") != "complete":
        assert time.monotonic() < deadline, "the answer did not complete"
        lengths.append(len(answer_text(page)))
        time.sleep(0.15)
    growth = sorted(set(lengths))
    assert len(growth) >= 5, f"the answer did not grow while streaming: {lengths}"
    assert lengths == sorted(lengths), "the text shrank while streaming"
    assert answer_text(page) == TEXT
    assert ("streaming", "Writing the answer…") in tab.status_log()

    # The conversation is in the list (titled from the question) and in the URL.
    conversation_id = conversation_of(page)
    link = page.locator(f"#conversations a[data-id='{conversation_id}']")
    link.wait_for()
    assert link.inner_text() == "Count for me"
    assert link.get_attribute("aria-current") == "page"

    # A new chat empties the page; the list brings the conversation back from the server.
    page.click("#new-chat")
    page.wait_for_selector("#empty", state="visible")
    assert page.locator("article").count() == 0
    link.click()
    wait_until(page, "complete")
    assert answer_text(page) == TEXT
    assert page.locator("article.message-user").inner_text().endswith("Count for me")
    assert tab.errors == []


def test_the_stop_button_halts_the_answer_and_keeps_what_was_written(
    tab: Tab, server: Server
) -> None:
    page = tab.page
    page.goto(server.url + "/")
    ask(page, "Count slowly")
    page.wait_for_function(
        f"() => document.querySelector('{LAST_ANSWER}')?.textContent.includes('word5')"
    )
    assert page.locator("#stop").is_enabled()
    page.click("#stop")
    wait_until(page, "cancelled")
    halted = answer_text(page)
    time.sleep(0.6)  # ten more words' worth of time: nothing more may arrive
    assert answer_text(page) == halted
    assert TEXT.startswith(halted)
    assert 5 < len(halted.split()) < 80
    assert page.locator("#status").inner_text() == "Stopped."
    assert page.locator("#stop").is_disabled()
    assert answer(page).locator(".footer").inner_text().startswith("Stopped.")
    saved = stored(server, conversation_of(page))["messages"][-1]
    assert (saved["status"], saved["content"]) == ("cancelled", halted)
    assert tab.errors == []


def test_the_page_works_from_the_keyboard(tab: Tab, server: Server) -> None:
    page = tab.page
    page.goto(server.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "prompt"
    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("second line")
    assert page.locator("article").count() == 0
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.querySelector('{LAST_ANSWER}')?.textContent.includes('word3')"
    )
    assert page.locator("article.message-user .user-text").inner_text() == "First line\nsecond line"
    page.keyboard.press("Escape")  # stops the answer
    wait_until(page, "cancelled")
    assert page.evaluate("document.activeElement.id") == "prompt"
    assert tab.errors == []


def test_a_dropped_connection_shows_reconnecting_and_resumes_without_duplicated_text(
    tab: Tab, server: Server
) -> None:
    page = tab.page
    requests: list[tuple[str, str, str | None]] = []
    page.on("request", lambda r: requests.append((r.method, r.url, r.headers.get("last-event-id"))))
    upstream = int(server.url.rsplit(":", 1)[1])
    # The page loads through the proxy too: the connection to cut is the one with the chat POST.
    with CuttingProxy(
        upstream, cut_when=lambda request: b"POST /v1/chat/stream" in request, cut_in_delta=10
    ) as proxy:
        page.goto(proxy.url + "/")
        ask(page, "Count through a bad network")
        wait_until(page, "complete", timeout=30_000)
        # The cut fell inside the 10th delta (seq 12, after start and status).
        assert proxy.cut_in == 12
    assert answer_text(page) == TEXT

    states = [state for state, _text in tab.status_log()]
    assert "reconnecting" in states, states
    assert any(text.startswith("Connection lost. Reconnecting…") for _s, text in tab.status_log())
    assert states.index("reconnecting") < len(states) - 1  # and it left that state again
    resumes = [r for r in requests if "/v1/runs/" in r[1]]
    assert len(resumes) == 1, requests
    method, url, last_event_id = resumes[0]
    assert (method, last_event_id) == ("GET", "11")
    assert url.endswith("/events")
    # The cut shows as a failed load in the console; nothing else may.
    assert [e for e in tab.errors if "net::ERR" not in e] == []


@pytest.mark.parametrize("origin", ["model", "pipeline"])
def test_markup_in_an_answer_shows_as_text_and_never_runs(
    chromium: Browser, server: Server, unsafe_model: Server, origin: str
) -> None:
    tab = open_tab(chromium)
    page = tab.page
    try:
        if origin == "model":  # the chat pipeline, the model's own words
            page.goto(unsafe_model.url + "/")
            ask(page, "Show me some HTML")
        else:
            page.goto(server.url + "/")
            ask(page, "Show me some HTML", pipeline="unsafe")
        wait_until(page, "complete")
        time.sleep(0.3)  # give an injected onerror handler every chance to fire
        assert tab.dialogs == []
        assert page.locator("#messages img, #messages script, #messages iframe").count() == 0
        assert page.locator("#messages a[href^='javascript' i]").count() == 0
        text = answer_text(page)
        assert "<img src=x onerror=alert(1)>" in text
        assert "<script>alert(2)</script>" in text
        assert answer(page).locator("strong").inner_text() == "bold"  # Markdown still renders
        assert tab.errors == []
    finally:
        page.context.close()


def test_a_rag_answer_shows_its_sources_with_citations_linked(tab: Tab, server: Server) -> None:
    page = tab.page
    page.goto(server.url + "/")
    ask(page, "Where is Paris?", pipeline="cited")
    wait_until(page, "complete")
    sources = answer(page).locator(".sources li")
    assert sources.count() == 2
    first = sources.first.locator("a.source-title")
    assert first.inner_text() == "Paris"
    assert first.get_attribute("href") == "https://en.wikipedia.org/wiki/Paris"
    assert first.get_attribute("rel") == "noopener noreferrer"
    assert "2,102,650 inhabitants" in sources.nth(1).inner_text()

    citations = answer(page).locator("a.citation")
    assert citations.all_inner_texts() == ["[1]", "[2]", "[1]", "[2]"]
    first_id = sources.first.get_attribute("id")
    assert citations.first.get_attribute("href") == f"#{first_id}"
    citations.nth(1).click()
    assert page.evaluate("document.activeElement.id") == sources.nth(1).get_attribute("id")
    assert "#" not in page.url  # a citation does not navigate

    assert ("streaming", "Searching your documents…") in tab.status_log()
    assert "grounding 0.90" in answer(page).locator(".footer").inner_text()
    followups = answer(page).locator(".followups button")
    assert followups.all_inner_texts() == [
        "What is the population of Lyon?",
        "When did Paris become the capital?",
    ]
    followups.first.click()  # asks it
    page.wait_for_selector("article.message-assistant >> nth=1")
    wait_until(page, "complete")
    assert page.locator("article.message-user").nth(1).inner_text().endswith("of Lyon?")
    assert tab.errors == []


def assert_sql_answer(reply: Locator, server: Server) -> None:
    """The `tabular` pipeline's query, table preview and CSV link, as the page shows them."""
    assert reply.locator(".sql summary").inner_text() == "SQL (sqlite)"
    assert reply.locator(".sql code").inner_text().startswith("SELECT name, country, population")
    assert reply.locator(".table-wrap th").all_inner_texts() == ["name", "country", "population"]
    assert reply.locator(".table-wrap tbody tr").count() == 3
    assert reply.locator(".table-wrap caption").inner_text() == "Showing 3 of 120 rows"
    assert reply.locator(".table-wrap tbody tr").nth(2).locator("td").first.inner_text() == (
        "<i>Shanghai</i>"
    )
    assert reply.locator(".table-wrap i").count() == 0
    # Numbers stay numbers (right-aligned), streamed or stored.
    assert reply.locator(".table-wrap td.num").all_inner_texts() == [
        "37400068", "28514000", "25582000"
    ]  # fmt: skip
    csv = reply.locator(".csv a")
    assert csv.get_attribute("href") == server.url + "/v1/files/cities.csv"
    assert csv.get_attribute("download") is not None
    assert "120 rows, 3.8 kB" in reply.locator(".csv").inner_text()


def test_a_sql_answer_shows_its_query_a_table_preview_and_a_csv_link(
    tab: Tab, server: Server
) -> None:
    page = tab.page
    page.goto(server.url + "/")
    ask(page, "Which cities are the largest?", pipeline="tabular")
    wait_until(page, "complete")
    assert_sql_answer(answer(page), server)
    stages = [text for _state, text in tab.status_log()]
    assert "Writing SQL…" in stages
    assert "Running the query…" in stages

    # Reloaded, the page renders the stored answer: the same query, preview and link.
    page.reload()
    wait_until(page, "complete")
    assert page.locator("article.message-assistant").count() == 1
    assert_sql_answer(answer(page), server)
    assert tab.errors == []


def test_the_pipeline_picker_lists_the_servers_pipelines_and_documents_upload(
    tab: Tab, server: Server
) -> None:
    page = tab.page
    page.goto(server.url + "/")
    page.wait_for_selector("#pipeline option[value=cited]", state="attached")
    names = page.locator("#pipeline option").all_inner_texts()
    served = httpx.get(server.url + "/v1/pipelines", timeout=10).json()["data"]
    assert names == served
    assert {"chat", "cited", "tabular", "unsafe"} <= set(names)
    assert page.locator("#pipeline").input_value() == "chat"

    document: FilePayload = {
        "name": "lyon.md",
        "mimeType": "text/markdown",
        "buffer": b"# Lyon\n\nLyon is the third-largest city of France.\n",
    }
    page.set_input_files("#upload-file", files=[document])
    page.click("#upload-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('upload-status').textContent.startsWith('Lyon: created')"
    )
    page.wait_for_selector("#documents li")
    assert page.locator("#documents li").first.inner_text().startswith("Lyon")
    assert tab.errors == []


def test_screenshots_of_the_page_wide_and_on_a_narrow_screen(
    chromium: Browser, server: Server, tmp_path: Path
) -> None:
    wide = open_tab(chromium, 1280, 1000)
    try:
        page = wide.page
        page.goto(server.url + "/")
        ask(page, "Where is Paris, and how many people live there?", pipeline="cited")
        wait_until(page, "complete")
        ask(page, "Which cities are the largest?", pipeline="tabular")
        wait_until(page, "complete")
        page.locator("#prompt").blur()
        path = screenshot_path("screenshot-chat.png", tmp_path)
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
    finally:
        wide.page.context.close()

    narrow = open_tab(chromium, 390, 844)
    try:
        page = narrow.page
        page.goto(server.url + "/")
        assert page.locator("#sidebar").is_hidden()  # a drawer, closed
        ask(page, "Where is Paris?", pipeline="cited")
        wait_until(page, "complete")
        page.locator("#prompt").blur()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
        for control in ("#send", "#stop", "#pipeline", "#sidebar-toggle", "#prompt"):
            box = page.locator(control).bounding_box()
            assert box is not None
            assert box["x"] >= 0, control
            assert box["x"] + box["width"] <= 390, control
        path = screenshot_path("screenshot-narrow.png", tmp_path)
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000

        page.click("#sidebar-toggle")
        assert page.locator("#sidebar").is_visible()
        assert page.locator("#sidebar-toggle").get_attribute("aria-expanded") == "true"
        page.keyboard.press("Escape")
        assert page.locator("#sidebar").is_hidden()
        assert narrow.errors == []
    finally:
        narrow.page.context.close()
