"""The web page end to end: a real server on 127.0.0.1, driven in headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package; skipped with the reason when they are missing. Screenshots go to
``artifacts/`` at the repository root (or ``$ANYGRAM_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("headless browser test: needs chromium and chromedriver (Debian: apt-get "
                "install chromium chromium-driver; .ci/run installs them)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_server import build_ids_index, build_text_index, running_server  # noqa: E402

from anygram import Engine  # noqa: E402
from anygram.server import ServerLimits, create_app  # noqa: E402
from anygram.tools.render import BINS, bin_of  # noqa: E402

# A query's first run on a cold kernel cache compiles kernels inside the request: tens of
# seconds on a loaded machine. The waits below end as soon as the page shows the answer; their
# bound, and the server's time budget, only stop a hung test.
ANSWER_S = 600

ARTIFACTS = Path(os.environ.get("ANYGRAM_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "artifacts"))


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Engine]:
    base = tmp_path_factory.mktemp("e2e")
    return {"tiny": Engine.open(build_text_index(base)),
            "ids": Engine.open(build_ids_index(base))}


@pytest.fixture(scope="module")
def base_url(engines: dict[str, Engine]) -> Iterator[str]:
    with running_server(create_app(engines, ServerLimits(timeout_s=ANSWER_S))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="anygram-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, ANSWER_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")


def _run(driver: Any) -> None:
    """Click Run once the previous run has settled: a click while it runs (the button is
    disabled until every request of the run is answered) does nothing."""
    WebDriverWait(driver, ANSWER_S).until(lambda d: d.find_element(By.ID, "run").is_enabled())
    driver.find_element(By.ID, "run").click()


def _count_shown(driver: Any, previous: str = "") -> str:
    WebDriverWait(driver, ANSWER_S).until(
        lambda d: d.find_element(By.ID, "count-value").get_attribute("data-count")
        not in ("", previous))
    return driver.find_element(By.ID, "count-value").get_attribute("data-count")


def _screenshot(driver: Any, name: str, width: int) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 120, 4000))
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    return path


def _rgb(colour: str) -> tuple[int, int, int]:
    """A CSS colour (``#rrggbb``, or ``rgb(...)``/``rgba(...)`` as the browser reports it)
    as its red, green and blue."""
    if colour.startswith("#"):
        return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
    r, g, b = colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]
    return (int(r), int(g), int(b))


def _shown(driver: Any, css: str) -> list[str]:
    """The ids of the elements matching ``css`` that are displayed."""
    return [e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, css)
            if e.is_displayed()]


def test_no_result_cards_before_a_query_nor_under_an_error(browser: Any,
                                                           base_url: str) -> None:
    browser.set_window_size(1280, 900)
    _open(browser, base_url + "/?index=ids")
    assert _shown(browser, "#results, #results .card") == []
    _screenshot(browser, "web-page-before-query.png", 1280)
    # An id out of the vocabulary: every request fails; the error alone is shown.
    browser.find_element(By.ID, "query").send_keys("5000")
    _run(browser)
    WebDriverWait(browser, ANSWER_S).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    WebDriverWait(browser, ANSWER_S).until(lambda d: d.find_element(By.ID, "run").is_enabled())
    assert _shown(browser, "#results, #results .card") == []
    _screenshot(browser, "web-page-error.png", 1280)
    # A good query shows its cards; a bad one after it does not leave them standing.
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys("2, 3")
    _run(browser)
    assert _count_shown(browser) == "3"
    WebDriverWait(browser, ANSWER_S).until(lambda d: d.find_element(By.ID, "run").is_enabled())
    assert "card-count" in _shown(browser, "#results .card")
    assert not browser.find_element(By.ID, "error").is_displayed()
    for bad in ("2, x", "5000"):  # refused by the page, then by the server
        box.clear()
        box.send_keys(bad)
        _run(browser)
        WebDriverWait(browser, ANSWER_S).until(
            lambda d: d.find_element(By.ID, "error").is_displayed()
            and d.find_element(By.ID, "run").is_enabled())
        assert _shown(browser, "#results, #results .card") == [], bad


def test_the_shareable_url_keeps_the_next_token(browser: Any, base_url: str,
                                                engines: dict[str, Engine]) -> None:
    browser.set_window_size(1280, 900)
    _open(browser, base_url + "/?index=tiny")
    browser.find_element(By.ID, "query").send_keys("the ")
    browser.find_element(By.ID, "cont").send_keys("c")
    _run(browser)
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: d.find_element(By.ID, "infgram-prob").is_displayed())
    shown = browser.find_element(By.ID, "infgram-prob").text
    url = browser.current_url
    assert "cont=c" in url and "q=the+" in url, url
    _open(browser, url)  # what someone the link was sent to sees
    assert browser.find_element(By.ID, "cont").get_attribute("value") == "c"
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: d.find_element(By.ID, "infgram-prob").is_displayed())
    assert browser.find_element(By.ID, "infgram-prob").text.split(" · ")[0] == \
        shown.split(" · ")[0]
    expected = engines["tiny"].infgram_prob("the ", ord("c"))
    assert f"{expected.cont_count} / {expected.prompt_count}" in shown
    # Emptied, the field leaves the URL.
    browser.find_element(By.ID, "cont").clear()
    _run(browser)
    WebDriverWait(browser, ANSWER_S).until(lambda d: "cont=" not in d.current_url)


def test_a_leading_space_is_shown(browser: Any, base_url: str,
                                  engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    browser.set_window_size(1280, 900)
    _open(browser, base_url + "/?index=tiny")
    note = browser.find_element(By.ID, "space-note")
    box = browser.find_element(By.ID, "query")
    assert not note.is_displayed()
    box.send_keys(" cat")
    assert note.is_displayed() and "starts with a space" in note.text
    assert browser.find_element(By.CSS_SELECTOR, "#space-note code").text == "␣cat"
    assert "lead-space" in box.get_attribute("class")  # the box marks its start
    _run(browser)
    assert int(_count_shown(browser)) == eng.count(" cat").count
    chips = browser.find_elements(By.CSS_SELECTOR, "#count-tokens .tok")
    assert [c.text for c in chips] == ["␣", "c", "a", "t"]  # the space is a token of it
    _screenshot(browser, "web-page-leading-space.png", 1280)
    box.clear()
    box.send_keys("cat")
    assert not note.is_displayed()
    box.send_keys(" ")
    assert note.is_displayed() and "ends with a space" in note.text
    assert box.get_attribute("class").split() == ["trail-space"]
    browser.find_element(By.ID, "mode-ids").click()  # ids: spaces only separate them
    assert not note.is_displayed()
    _open(browser, base_url + "/?index=tiny&q=%20cat")  # a shared link shows it too
    assert browser.find_element(By.ID, "space-note").is_displayed()


def test_type_a_query_and_see_the_count(browser: Any, base_url: str,
                                        engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    _open(browser, base_url + "/")
    assert browser.find_element(By.ID, "index").get_attribute("value") in ("tiny", "ids")
    browser.execute_script("const s = document.getElementById('index'); s.value = 'tiny';"
                           "s.dispatchEvent(new Event('change'));")
    box = browser.find_element(By.ID, "query")
    box.send_keys("the ")
    browser.find_element(By.ID, "cont").send_keys("c")
    _run(browser)
    assert int(_count_shown(browser)) == eng.count("the ").count
    shown = browser.find_element(By.ID, "count-value").text.replace(",", "")
    assert shown == str(eng.count("the ").count)
    # Next-token bars: one per distinct next token (all of them fit in the top 20 here).
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ntd-bars .bar-row")) > 0)
    bars = browser.find_elements(By.CSS_SELECTOR, "#ntd-bars .bar-row")
    assert len(bars) == len(eng.ntd("the ").counts)
    # The bars' widths are set through the CSSOM, which the page's Content-Security-Policy
    # allows (a style attribute would be refused): the most frequent token's bar is full.
    styles = [b.get_attribute("style") for b in
              browser.find_elements(By.CSS_SELECTOR, "#ntd-bars .bar")]
    assert "width: 100%" in styles[0], styles
    violations = [entry["message"] for entry in browser.get_log("browser")
                  if "Content Security Policy" in entry["message"]]
    assert not violations, violations
    # ∞-gram: the whole query occurs, so every token is highlighted; its prob is shown.
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: d.find_element(By.ID, "infgram-prob").is_displayed())
    suffix = browser.find_elements(By.CSS_SELECTOR, "#infgram-tokens .tok.in-suffix")
    assert len(suffix) == eng.infgram_ntd("the ").suffix_len == 4
    assert "%" in browser.find_element(By.ID, "infgram-prob").text
    assert not browser.find_element(By.ID, "error").is_displayed()
    if hasattr(Engine, "search_docs"):  # document hits, the match highlighted
        WebDriverWait(browser, ANSWER_S).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#docs-hits li mark")) > 0)
        marks = [m.get_attribute("textContent")
                 for m in browser.find_elements(By.CSS_SELECTOR, "#docs-hits li mark")]
        assert marks and all(m == "the " for m in marks), marks
    _screenshot(browser, "web-page-desktop.png", 1280)

    # A query that backs off: only its occurring suffix is highlighted.
    box.clear()
    box.send_keys("qqq the c")
    before = browser.find_element(By.ID, "count-value").get_attribute("data-count")
    _run(browser)
    assert _count_shown(browser, before) == "0"
    WebDriverWait(browser, ANSWER_S).until(lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#infgram-tokens .tok.in-suffix")) == eng.infgram_ntd(
            "qqq the c").suffix_len)
    _screenshot(browser, "web-page-phone.png", 390)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, "the page scrolls sideways on a phone"


def test_ids_on_an_index_without_tokenizer_and_errors(browser: Any, base_url: str,
                                                      engines: dict[str, Engine]) -> None:
    browser.set_window_size(1280, 900)
    _open(browser, base_url + "/?index=ids")
    assert not browser.find_element(By.ID, "mode-text").is_enabled()
    assert browser.find_element(By.ID, "mode-ids").is_selected()
    browser.find_element(By.ID, "query").send_keys("2, 3")
    _run(browser)
    assert int(_count_shown(browser)) == engines["ids"].count([2, 3]).count == 3
    # A bad id: the API's error message is shown.
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys("5000")
    _run(browser)
    WebDriverWait(browser, ANSWER_S).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "5000" in browser.find_element(By.ID, "error").text


@pytest.mark.skipif(not hasattr(Engine, "count_cnf"), reason="no CNF queries in the engine")
def test_cnf_query(browser: Any, base_url: str, engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    browser.set_window_size(1280, 900)
    _open(browser, base_url + "/?index=tiny")
    browser.find_element(By.ID, "query").send_keys("cat AND dog OR mat")
    _run(browser)
    expect = eng.count_cnf("cat AND dog OR mat").count
    assert int(_count_shown(browser)) == expect > 0
    assert [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#count-tokens mark")] == [
        "cat", "dog", "mat"]
    assert not browser.find_element(By.ID, "card-ntd").is_displayed()
    if hasattr(Engine, "search_docs_cnf"):
        WebDriverWait(browser, ANSWER_S).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#docs-hits li mark.c1")) > 0)
    _screenshot(browser, "web-page-cnf.png", 1280)


@pytest.mark.skipif(not hasattr(Engine, "infgram_text"), reason="no text analyses")
def test_longest_match_view_colours_tokens(browser: Any, base_url: str,
                                           engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    query = "the dog sat on the mat"
    browser.set_window_size(390, 900)
    _open(browser, base_url + "/?index=tiny")
    browser.find_element(By.ID, "query").send_keys(query)
    _run(browser)
    expect = eng.infgram_text(query).suffix_len.tolist()
    sel = "#longest-tokens .tok[data-len]"
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, sel)) == len(expect))
    toks = browser.find_elements(By.CSS_SELECTOR, sel)
    assert [int(t.get_attribute("data-len")) for t in toks] == expect
    colours = {t.value_of_css_property("background-color") for t in toks}
    assert len(colours) >= 3, colours  # coloured by length, not one flat colour
    # The bins and colours of `anygram color` and `eval --html` (render.BINS).
    assert [_rgb(t.value_of_css_property("background-color")) for t in toks] == [
        _rgb(BINS[bin_of(n)][3]) for n in expect]
    legend = browser.find_elements(By.CSS_SELECTOR, "#longest-legend .tok")
    assert [t.text for t in legend] == [b[0] for b in BINS]
    assert [_rgb(t.value_of_css_property("background-color")) for t in legend] == [
        _rgb(b[3]) for b in BINS]
    # Coloured by creativity instead: the longest match starting at each token.
    browser.find_element(By.ID, "longest-creativity").click()
    WebDriverWait(browser, ANSWER_S).until(lambda d: [
        int(t.get_attribute("data-len")) for t in d.find_elements(By.CSS_SELECTOR, sel)]
        == eng.creativity(query))
    _screenshot(browser, "web-page-longest-match.png", 390)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, "the page scrolls sideways on a phone"


def test_contamination_view_marks_the_covered_tokens(browser: Any, base_url: str,
                                                     engines: dict[str, Engine]) -> None:
    from anygram.tools.contamination import example_contamination
    eng = engines["tiny"]
    query = "qq the cat sat on the mat zz"
    _open(browser, base_url + "/?index=tiny")
    browser.find_element(By.ID, "query").send_keys(query)
    _run(browser)
    WebDriverWait(browser, ANSWER_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#longest-tokens .tok[data-len]"))
    n = browser.find_element(By.ID, "covered-n")
    n.clear()
    n.send_keys("4")
    browser.find_element(By.ID, "longest-covered").click()
    ids = eng.tokenize(query)
    want = [0] * len(ids)
    for a, b in example_contamination(eng, ids, n=4).covered:
        want[a:b] = [1] * (b - a)
    assert 0 < sum(want) < len(ids)  # some tokens covered, some not
    sel = "#longest-tokens .tok[data-covered]"
    WebDriverWait(browser, ANSWER_S).until(lambda d: [
        int(t.get_attribute("data-covered")) for t in d.find_elements(By.CSS_SELECTOR, sel)]
        == want)
    assert "4-gram found in the corpus" in browser.find_element(By.ID, "longest-meta").text
    _screenshot(browser, "web-page-contamination.png", 900)
