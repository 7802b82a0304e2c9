"""report.html in a real headless browser (Chromium through selenium): the page stands alone, the
events table and the zoomable plot are visible, and the close-ups load.

Chromium and chromedriver come from Debian's packages (``.ci/run`` installs them when absent); without
them the test is skipped with a message."""

import shutil

import numpy as np
import pandas as pd
import pytest

from diffad import ImDiffusionDetector
from diffad.data.synthetic import make_series
from diffad.report import write_run


def _browser_paths() -> tuple[str, str]:
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no Chromium/chromedriver on PATH (apt-get install chromium chromium-driver; .ci/run does)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency")
    from selenium.webdriver.chrome.service import Service

    binary, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1800"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(60)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A run with timestamps, labels and attribution; its report.html copied alone into another folder."""
    data = make_series(n_train=600, n_test=400, n_channels=3, n_anomalies=3, seed=0)
    det = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(data.train)
    index = pd.date_range("2026-01-01", periods=len(data.test), freq="min")
    run = tmp_path_factory.mktemp("run") / "r"
    result = write_run(run, det, data.test, index=index, channels=["cpu", "mem", "disk"], labels=data.labels)
    alone = tmp_path_factory.mktemp("mailed") / "report.html"
    shutil.copy(run / "report.html", alone)
    return alone, result


def test_the_report_stands_alone_and_shows_events_and_the_plot(browser, report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page, result = report
    events = result["events"]
    assert len(events) >= 1
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#plot-interactive .main-svg"))
    )
    # nothing was fetched: no file beside the page, no network
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))"
    )
    assert fetched == []
    table = browser.find_element(By.ID, "events")
    assert table.is_displayed()
    rows = table.find_elements(By.TAG_NAME, "tr")
    assert len(rows) == len(events) + 1  # a header and one row per event
    first = rows[1].text
    assert str(events.iloc[0]["start"])[:16] in first and any(c in first for c in ("cpu", "mem", "disk"))
    plot = browser.find_element(By.ID, "plot-interactive")
    assert plot.is_displayed() and plot.size["height"] > 200 and plot.size["width"] > 600
    traces = browser.execute_script("return document.getElementById('plot-interactive').data.length")
    assert traces == 4  # three channels and the score
    # the static fallback is hidden once plotly has drawn
    assert not browser.find_element(By.ID, "plot-static").is_displayed()
    closeups = browser.find_elements(By.CSS_SELECTOR, "#closeups img")
    assert len(closeups) == min(len(events), 8)
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 100 for img in closeups)
    for section in ("threshold", "training", "run"):
        assert browser.find_element(By.ID, section).is_displayed()
    assert "version: diffad" in browser.find_element(By.ID, "run").text


def test_without_scripts_the_static_plot_shows(browser, report):
    """A mail reader runs no scripts: the embedded PNG of the plot is what it shows."""
    from selenium.webdriver.common.by import By

    page, _ = report
    text = page.read_text()
    stripped = page.with_name("noscript.html")
    start = text.index("<script")
    while start >= 0:  # drop every script, as a mail reader would
        end = text.index("</script>", start) + len("</script>")
        text = text[:start] + text[end:]
        start = text.find("<script")
    stripped.write_text(text)
    browser.get(stripped.as_uri())
    static = browser.find_element(By.ID, "plot-static")
    assert static.is_displayed() and browser.execute_script("return arguments[0].naturalWidth", static) > 500
    assert browser.find_element(By.ID, "events").is_displayed()
    assert np.isfinite(float(browser.find_element(By.CSS_SELECTOR, "#threshold b").text))
