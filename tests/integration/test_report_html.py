"""The browsable leaderboard in a real headless browser (Chromium through Selenium).

Skipped, with the reason, when Selenium or a Chromium + chromedriver pair is not installed
(`.ci/run` installs Debian's `chromium chromium-driver`; `pip install -e ".[dev]"` Selenium).
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

from inpaintbench.store.artifacts import example_path, save_examples
from inpaintbench.store.records import ResultsStore, SampleRecord

METHODS = {"good": 0.05, "middle": 0.10, "bad": 0.20}  # LPIPS per method (+ a little per image)
N = 4


def _browser_paths() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="the browser test needs Selenium (pip install -e '.[dev]')")
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no Chromium + chromedriver on this machine (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from inpaintbench.report.leaderboard import write_leaderboard

    root = tmp_path_factory.mktemp("html")
    results = root / "results" / "results.jsonl"
    ids = [f"s{i}" for i in range(N)]
    records = []
    for m, (method, lpips) in enumerate(METHODS.items()):
        for i, sid in enumerate(ids):
            records.append(SampleRecord(
                task="inpainting", method=method, method_name=method, config={}, config_hash=method,
                dataset="toy", dataset_hash="dh", mask="box", mask_hash="mh", mask_config={}, sample_id=sid,
                seed=0, status="ok", time_s=0.001 * (m + 1), hole_fraction=0.25,
                metrics={"lpips": lpips + 0.001 * i, "psnr": 30.0 - 5 * m + i, "ssim": 0.9 - 0.1 * m}))
    ResultsStore(results).append(records)
    gen = torch.Generator().manual_seed(0)
    originals = torch.rand(N, 1, 16, 16, generator=gen)
    masks = torch.zeros(N, 1, 16, 16, dtype=torch.bool)
    masks[:, :, 4:12, 4:12] = True
    save_examples(example_path(results.parent, "toy", "box", "_input"), ids, original=originals, mask=masks)
    for m, method in enumerate(METHODS):
        save_examples(example_path(results.parent, "toy", "box", method), ids,
                      output=torch.where(masks, torch.full_like(originals, m / 2), originals))
    write_leaderboard([results], root / "report", n_resamples=200)
    return root / "report" / "LEADERBOARD.html"


@pytest.fixture(scope="module")
def browser(page):
    browser_bin, driver_bin = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_bin
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    driver.set_page_load_timeout(30)
    try:
        driver.get(page.as_uri())
        yield driver
    finally:
        driver.quit()


def _column(driver, table, index):
    return [row.find_elements("css selector", "td")[index].text
            for row in table.find_elements("css selector", "tbody tr")]


def test_page_loads_without_console_errors(browser):
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    assert browser.title.startswith("inpaintbench leaderboard")
    assert browser.execute_script("return document.images.length") > 0


def test_clicking_a_header_sorts_the_table(browser):
    table = browser.find_element("css selector", "section table.sortable")
    headers = table.find_elements("css selector", "th")
    titles = [h.text for h in headers]
    psnr = titles.index("PSNR ↑")
    before = _column(browser, table, 0)
    assert before == ["good", "middle", "bad"]  # sorted by LPIPS
    headers[psnr].click()  # ascending PSNR: the worst first
    assert _column(browser, table, 0) == ["bad", "middle", "good"]
    headers[psnr].click()  # descending
    assert _column(browser, table, 0) == ["good", "middle", "bad"]


def test_choosing_a_sample_shows_its_images_and_the_flip_switches_methods(browser):
    from selenium.webdriver.support.ui import Select

    data = json.loads(browser.find_element("id", "viewer-data").get_attribute("textContent"))
    sample = data["tables"][0]["samples"]["s2"]
    Select(browser.find_element("id", "pick-sample")).select_by_value("s2")
    cells = browser.find_elements("css selector", "#cells .cell")
    assert len(cells) == 3 + len(METHODS)  # original, mask, input, each method
    sources = [c.find_element("tag name", "img").get_attribute("src") for c in cells]
    assert sources[0] == sample["original"] and sources[1] == sample["mask"]
    assert sources[3:] == [sample["outputs"][m] for m in METHODS]
    assert "LPIPS (alex) 0.0520" in cells[3].text  # that sample's metrics under its output
    flip = browser.find_element("id", "flip-img")
    first = flip.get_attribute("src")
    browser.find_element("id", "flip").click()
    deadline = time.time() + 5
    while flip.get_attribute("src") == first and time.time() < deadline:
        time.sleep(0.05)
    assert flip.get_attribute("src") == sample["outputs"]["middle"] and first == sample["outputs"]["good"]
    assert "middle" in browser.find_element("id", "flip-label").text
