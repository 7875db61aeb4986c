"""The pages a person opens, in a real browser: headless Chromium (the system's, driven by
Playwright) against the real server with the shipped models. Every request the browser makes is
recorded; none may leave 127.0.0.1. A missing browser fails these tests (scripts/browser.sh
installs one), it never skips them."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, expect, sync_playwright

from tests.support.server import ROOT, running_server

# Flags that keep Chromium itself from calling home (updates, sync, safe browsing, field trials).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
OWN_ERROR_STATUS = "Failed to load resource: the server responded with a status of 4"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", ROOT / "tests" / "screenshots"))


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "no Chromium for the browser tests: run scripts/browser.sh (apt-get install chromium) "
            "or set CHROMIUM=/path/to/chrome",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server({"MODEL_DIR": str(ROOT / "models")}) as (_, url):
        yield url


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    env = {"MODEL_DIR": str(ROOT / "models"), "MODELS": "sentiment", "API_KEY": "open-sesame"}
    with running_server(env) as (_, url):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    pw: Playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Recorder:
    """Every request and console error of one browser context."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.console_errors: list[str] = []

    def on_request(self, request: Request) -> None:
        self.urls.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        # The API's own 4xx answers (asked for by some tests) are logged too; they are not faults.
        if message.type == "error" and not message.text.startswith(OWN_ERROR_STATUS):
            self.console_errors.append(message.text)

    def outside(self, base: str) -> list[str]:
        """Requests to anywhere but this server (data: and blob: URLs never touch a network)."""
        host = urlsplit(base).netloc
        return [u for u in self.urls if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != host]


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[tuple[Page, Recorder]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    recorder = Recorder()
    context.on("request", recorder.on_request)
    p = context.new_page()
    p.on("console", recorder.on_console)
    p.set_default_timeout(30_000)
    yield p, recorder
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def assert_stayed_home(recorder: Recorder, base: str) -> None:
    assert recorder.urls, "the browser made no request at all"
    assert not recorder.outside(base), f"requests left {base}: {recorder.outside(base)}"
    # A blocked outside fetch (the pages' Content-Security-Policy) shows up as a console error.
    assert not recorder.console_errors, recorder.console_errors


def test_swagger_ui_renders_and_try_it_out_calls_sentiment(page: tuple[Page, Recorder], server: str) -> None:
    p, recorder = page
    p.goto(f"{server}/docs")
    expect(p.locator(".swagger-ui .info .title")).to_contain_text("lstm-serve")
    operation = p.locator(".opblock-post").filter(
        has=p.locator(".opblock-summary-path", has_text=re.compile(r"^/sentiment$"))
    )
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table .highlight-code").first).to_contain_text("predictions")
    assert any(u.endswith("/sentiment") for u in recorder.urls)
    assert_stayed_home(recorder, server)


def test_redoc_renders(page: tuple[Page, Recorder], server: str) -> None:
    p, recorder = page
    p.goto(f"{server}/redoc")
    expect(p.locator("h1").first).to_contain_text("lstm-serve")
    expect(p.locator("h2", has_text="Classify texts into the served model's labels").first).to_be_visible()
    for tag in ("sentiment", "ner", "forecast"):
        expect(p.get_by_role("menuitem", name=tag, exact=True)).to_be_visible()
    assert_stayed_home(recorder, server)


def run_panel(p: Page, panel: str) -> None:
    p.click(f"#{panel}-run")
    expect(p.locator(f"#{panel}-panel")).to_have_attribute("data-state", "done")


def test_playground_panels_answer_and_draw(page: tuple[Page, Recorder], server: str) -> None:
    p, recorder = page
    p.goto(server + "/")
    expect(p.locator("#service-status")).to_have_text(re.compile(r"^ready: "))
    expect(p.locator("#link-docs")).to_have_attribute("href", "docs")

    run_panel(p, "sentiment")
    expect(p.locator("#sentiment-label")).to_have_text(re.compile("^(positive|negative)$"))
    tokens = p.locator("#sentiment-attention .tok")
    assert tokens.count() >= 10
    weights = [float(w) for w in tokens.evaluate_all("els => els.map(e => e.dataset.weight)")]
    assert abs(sum(weights) - 1.0) < 1e-3  # attention weights, as the API gave them
    assert "%" in p.locator("#sentiment-probs").inner_text()

    run_panel(p, "ner")
    marks = p.locator("#ner-marked mark.ent")
    assert marks.count() >= 3
    labels = set(marks.evaluate_all("els => els.map(e => e.dataset.label)"))
    assert labels <= {"PER", "ORG", "LOC", "MISC"}
    assert len(labels) >= 2
    assert "confidence" in (marks.first.get_attribute("title") or "")
    # The hyphenated company comes back whole, as CoNLL tokenised such names.
    expect(p.locator("#ner-marked mark.ent", has_text="Hewlett-Packard")).to_have_count(1)

    run_panel(p, "forecast")
    plot = p.locator("#forecast-plot")
    for part in ("path.history", "path.point", "polygon.band-80", "polygon.band-95"):
        d = plot.locator(part).get_attribute("d") or plot.locator(part).get_attribute("points")
        assert d, part
        assert len(d) > 50, part
    assert plot.locator(".axis text").count() >= 8
    facts = p.locator("#forecast-facts").inner_text()
    assert "history used" in facts
    box = plot.bounding_box()
    assert box is not None
    plot.hover(position={"x": box["width"] - 40, "y": box["height"] / 2})  # over the forecast
    expect(plot.locator(".readout")).to_contain_text("forecast")

    # A series typed by hand, plain numbers: the forecast is drawn for it too.
    p.select_option("#forecast-example", "weekly")
    run_panel(p, "forecast")
    assert p.locator("#forecast-plot polygon").count() == 2
    assert_stayed_home(recorder, server)


@pytest.fixture(scope="module")
def two_versions_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shipped sentiment model as versions 1.0.0 and 1.1.0 (hard links: the same files)."""
    model_dir = tmp_path_factory.mktemp("two-versions")
    for version in ("1.0.0", "1.1.0"):
        shutil.copytree(
            ROOT / "models" / "sentiment" / "1.0.0", model_dir / "sentiment" / version, copy_function=os.link
        )
    with running_server({"MODEL_DIR": str(model_dir)}) as (_, url):
        yield url


def test_playground_offers_the_served_models_of_a_task(
    page: tuple[Page, Recorder], two_versions_server: str
) -> None:
    p, recorder = page
    p.goto(two_versions_server + "/")
    select = p.locator(".model-select[data-task=sentiment]")
    expect(select.locator("option")).to_have_text(["sentiment 1.0.0", "sentiment 1.1.0 (default)"])
    info = p.locator(".model-info[data-model=sentiment]")
    expect(info).to_contain_text("sentiment 1.1.0")
    expect(info).to_contain_text("labels: negative, positive")
    select.select_option("sentiment@1.0.0")
    expect(info).to_contain_text("sentiment 1.0.0")
    run_panel(p, "sentiment")
    expect(p.locator("#sentiment-meta")).to_contain_text("sentiment 1.0.0")  # the answer's model
    # a task serving one model has nothing to choose
    expect(p.locator(".model-select")).to_have_count(1)
    assert_stayed_home(recorder, two_versions_server)


def test_playground_shows_the_apis_own_error(page: tuple[Page, Recorder], server: str) -> None:
    p, recorder = page
    p.goto(server + "/")
    p.fill("#forecast-horizon", "0")
    p.click("#forecast-run")
    expect(p.locator("#forecast-panel")).to_have_attribute("data-state", "error")
    body: dict[str, Any] = {"series": [{"values": [1.0, 2.0, 3.0], "horizon": 0}], "levels": [80, 95]}
    detail = httpx.post(f"{server}/forecast", json=body).json()["detail"][0]
    shown = p.locator("#forecast-error").inner_text()
    assert "422" in shown
    assert detail["msg"] in shown  # worded exactly as the API words it
    assert "horizon" in shown
    expect(p.locator("#forecast-result")).to_be_hidden()

    p.fill("#sentiment-text", "   ")
    p.click("#sentiment-run")
    expect(p.locator("#sentiment-panel")).to_have_attribute("data-state", "error")
    expect(p.locator("#sentiment-error")).to_contain_text("texts")
    assert_stayed_home(recorder, server)


def test_pages_open_with_an_api_key_and_calls_need_it(page: tuple[Page, Recorder], keyed_server: str) -> None:
    p, recorder = page
    p.goto(keyed_server + "/")
    expect(p.locator(".model-info[data-model=sentiment]")).to_contain_text("API key")
    p.click("#sentiment-run")
    expect(p.locator("#sentiment-error")).to_contain_text("missing or wrong API key")
    p.fill("#api-key", "open-sesame")
    run_panel(p, "sentiment")
    p.goto(keyed_server + "/docs")
    expect(p.locator(".swagger-ui .info .title")).to_contain_text("lstm-serve")
    assert_stayed_home(recorder, keyed_server)
