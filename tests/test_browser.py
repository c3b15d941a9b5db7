"""The viewer in a real headless Chromium (Debian's package), driven by Playwright: upload, result, Grad-CAM."""

import importlib.util
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a root user in a sandboxed machine with no network beyond 127.0.0.1.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The page's Content-Security-Policy forbids eval, so waits go through Playwright's locators, never through
# wait_for_function with a string (which newer Chromium refuses under that policy).
WAIT_MS = 30_000


def expect(locator):
    """Playwright's web-first assertion, imported only where Playwright is installed."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def wait_for_model(page) -> None:
    """Wait until the page has loaded the model (its model line no longer says 'loading')."""
    expect(page.locator("#model-line")).not_to_have_text(re.compile(r"^loading"), timeout=WAIT_MS)


def artifacts() -> Path:
    """Where screenshots go: $ECGLENS_ARTIFACTS, else test-artifacts/ in the repository (ignored by git)."""
    path = Path(os.environ.get("ECGLENS_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (Debian packages)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tiny_run):
    from conftest import shared_data_dir
    from ecglens.serve import ServeConfig, create_app

    data = shared_data_dir()
    examples = data / "ptb-xl" if data is not None and (data / "ptb-xl").is_dir() else None
    running = RunningServer(
        create_app(
            ServeConfig(
                tiny_run.bundle,
                "cpu",
                background_caches=(str(tiny_run.cache),),
                examples_root=None if examples is None else str(examples),
                measurements=importlib.util.find_spec("neurokit2") is not None,
            )
        )
    )
    yield running
    running.stop()


@pytest.fixture
def record(tmp_path):
    from ecglens.synth.cohort import SynthConfig, generate_record, write_record

    header = write_record(generate_record(3, SynthConfig(sampling_rate_hz=500)), tmp_path, 500)
    return [str(header), str(header.with_suffix(".dat"))]


def test_upload_shows_the_diagnosis_the_leads_and_grad_cam(browser, server, record):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(server.url)
    wait_for_model(page)
    page.set_input_files("#file-input", record)
    page.wait_for_selector("#result:not([hidden])")
    page.locator("#ecg .annotation-text").nth(11).wait_for()
    assert page.inner_text("#decisions").startswith("Decisions:")
    assert page.is_hidden("#ecg-scroll-hint")  # wide enough: no scroll hint
    labels = set(page.locator("#ecg .annotation-text").all_text_contents())
    assert {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"} <= labels
    traces_before = page.evaluate("document.getElementById('ecg').data.length")
    assert page.get_attribute("#ecg", "data-gradcam") == "off"
    page.check("#gradcam-toggle")
    page.wait_for_selector("#ecg[data-gradcam='on'], #ecg[data-gradcam='empty']")
    page.locator("#shap-bars .point").nth(11).wait_for()
    note = page.text_content("#shap-note")  # the sum shown is the one the API measured, beside its expectation
    assert "The leads sum to" in note and "standard error" in note and "add up to p − the background's" in note
    title = page.text_content("#ecg .gtitle")
    if page.get_attribute("#ecg", "data-gradcam") == "on":  # shading added as one full-height band
        assert page.evaluate("document.getElementById('ecg').data.length") == traces_before + 1
        assert "Grad-CAM for" in title and "per time not per lead" in title
    else:  # a blank map is said, not drawn
        assert "no positive Grad-CAM evidence" in title
    if importlib.util.find_spec("neurokit2") is not None:  # served with --measurements: numbers, not only shading
        assert page.inner_text("#measurements").startswith("Measured")
        expect(page.locator("#waves-note li")).to_have_count(2, timeout=WAIT_MS)
        lines = page.locator("#waves-note li").all_text_contents()
        assert lines[0].startswith("Grad-CAM for") and lines[1].startswith("SHAP for")
        assert all("evidence among the waves" in line or "no positive evidence" in line for line in lines)
    with page.expect_download() as download:  # the one-page report of what is shown, Grad-CAM included
        page.click("#download-pdf")
    report = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.endswith(".pdf") and report.startswith(b"%PDF")
    page.screenshot(path=str(artifacts() / "viewer-1280.png"), full_page=True)
    assert not problems, problems
    page.close()


@pytest.mark.realdata
def test_real_examples_with_their_known_labels_in_a_narrow_window(browser, server):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto(server.url)
    wait_for_model(page)
    if page.locator("#examples button").count() == 0:
        pytest.skip("real sample data absent: the viewer has no PTB-XL examples (set ECGLENS_DATA)")
    assert page.inner_text("#examples-label") == "Try a real record (known class):"
    assert page.inner_text("#examples-credit").startswith("Records: PTB-XL 1.0.3 (Wagner et al.")
    page.click("#examples button >> text=PVC")
    page.wait_for_selector("#result:not([hidden])")
    page.locator("#ecg .annotation-text").nth(11).wait_for()
    assert page.inner_text("#record-title").split(" ")[0].isdigit()  # a PTB-XL ecg_id
    assert page.inner_text("#known").startswith(
        "Known, mapped to this model's classes: PVC (the record's own statements: "
    )
    page.screenshot(path=str(artifacts() / "viewer-420.png"), full_page=True)
    assert page.is_visible("#ecg-scroll-hint")  # the ECG is cut after its first column: it says it scrolls
    assert "DICOM" in page.inner_text("#drop") and "SCP-ECG" in page.inner_text("#drop")  # every accepted format
    # Nothing wider than the window: the decisions column stays on screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    box = page.locator("#probabilities").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 420
    page.set_input_files("#file-input", [])
    page.close()


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory):
    """The starter model served with the example records 'ecglens data download examples' fetches (copied here
    from the shared sample, never downloaded)."""
    from conftest import shared_data_dir
    from ecglens.io.example_set import example_checksums
    from ecglens.serve import ServeConfig, create_app

    data = shared_data_dir()
    if data is None or not (data / "ptb-xl").is_dir():
        pytest.skip("real sample data absent: no PTB-XL files to serve as the fetched examples (set ECGLENS_DATA)")
    folder = tmp_path_factory.mktemp("examples")
    for path, _ in example_checksums():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes((data / "ptb-xl" / path).read_bytes())
    running = RunningServer(create_app(ServeConfig("starter", "cpu", examples_root=str(folder))))
    yield running
    running.stop()


@pytest.mark.realdata
@pytest.mark.parametrize("width", [1280, 420])
def test_a_fetched_example_is_diagnosed_with_its_credit_beside_the_buttons(browser, examples_server, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(examples_server.url)
    expect(page.locator("#examples button")).to_have_count(7, timeout=WAIT_MS)
    assert page.locator("#examples button").all_text_contents() == ["SNR", "AF", "IAVB", "RBBB", "PAC", "PVC", "STD"]
    assert page.inner_text("#examples-label") == "Try a real record (known class):"
    credit = page.inner_text("#examples-credit")
    assert credit.startswith("Records: PTB-XL 1.0.3 (Wagner et al., Sci Data 2020") and "CC BY 4.0" in credit
    assert page.get_attribute("#examples-credit a", "href") == "https://creativecommons.org/licenses/by/4.0/"
    page.click("#examples button >> text=RBBB")
    page.wait_for_selector("#result:not([hidden])")
    page.locator("#ecg .annotation-text").nth(11).wait_for()
    assert page.inner_text("#record-title").startswith("455")
    assert page.inner_text("#decisions").startswith("Decisions:") and "RBBB" in page.inner_text("#decisions")
    assert page.inner_text("#known").startswith("Known, mapped to this model's classes: RBBB")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the window
    page.screenshot(path=str(artifacts() / f"viewer-examples-{width}.png"), full_page=True)
    assert not problems, problems
    page.close()


def test_without_examples_the_page_says_how_to_fetch_them(browser, tiny_run):
    from ecglens.serve import ServeConfig, create_app

    running = RunningServer(create_app(ServeConfig(tiny_run.bundle, "cpu")))
    try:
        page = browser.new_page(viewport={"width": 420, "height": 900})
        page.goto(running.url)
        expect(page.locator("#examples-label")).to_have_text(re.compile(r"^No example"), timeout=WAIT_MS)
        label = page.inner_text("#examples-label")
        assert "'ecglens data download examples' fetches 7 real PTB-XL records (172 kB" in label
        assert page.is_visible("#examples") and page.locator("#examples button").count() == 0
        assert page.is_hidden("#examples-credit")
        page.close()
    finally:
        running.stop()


def test_bad_files_show_one_clear_line(browser, server, tmp_path):
    (tmp_path / "notes.txt").write_text("not an ECG")
    page = browser.new_page()
    page.goto(server.url)
    wait_for_model(page)
    page.set_input_files("#file-input", str(tmp_path / "notes.txt"))
    page.wait_for_selector("#status.error")
    assert "unsupported file type" in page.inner_text("#status")
    page.close()


def test_a_record_that_cannot_be_interpreted_says_so(browser, server, tmp_path):
    from conftest import write_wfdb

    write_wfdb(tmp_path, "flat", np.zeros((12, 2500)), fs=500)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(server.url)
    wait_for_model(page)
    page.set_input_files("#file-input", [str(tmp_path / "flat.hea"), str(tmp_path / "flat.dat")])
    page.wait_for_selector("#result:not([hidden])")
    page.locator("#ecg .annotation-text").nth(11).wait_for()
    assert "none: not interpretable (flat in 12 of 12 leads" in page.inner_text("#decisions")
    assert "yes" not in page.inner_text("#probabilities")  # the table shows the server's decisions: none
    page.screenshot(path=str(artifacts() / "viewer-not-interpretable.png"), full_page=True)
    assert not problems, problems
    page.close()


def test_a_file_name_with_markup_stays_text_in_the_chart(browser, server, tmp_path):
    from conftest import known_signal, write_wfdb

    write_wfdb(tmp_path, "r", known_signal(2500), fs=500)
    name = "<a href='https:x'>x"
    for suffix in (".hea", ".dat"):
        (tmp_path / f"{name}{suffix}").write_bytes((tmp_path / f"r{suffix}").read_bytes())
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server.url)
    wait_for_model(page)
    page.set_input_files("#file-input", [str(tmp_path / f"{name}.hea"), str(tmp_path / f"{name}.dat")])
    page.wait_for_selector("#result:not([hidden])")
    page.locator("#ecg .gtitle").wait_for()
    assert page.locator("#ecg .gtitle a").count() == 0  # no link made from the name
    assert name in page.text_content("#ecg .gtitle")
    page.close()


@pytest.mark.realdata
def test_the_batch_summary_opens_sorts_and_fits_a_narrow_window(browser, shared_data, tmp_path):
    from ecglens.cli import main

    out = tmp_path / "batch"
    assert main(["-q", "predict", str(shared_data / "clinical"), "--report", "pdf", "--out", str(out)]) == 0
    rows = (out / "summary.csv").read_text().strip().splitlines()[1:]
    for width in (1280, 420):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto((out / "summary.html").as_uri())
        assert page.locator("tbody tr").count() == len(rows) > 0  # every record of the batch, one row each
        first = page.locator("tbody tr td").first.inner_text()
        page.locator("th").first.click()
        page.locator("th").first.click()  # sorted descending: the first record is now another
        assert page.locator("tbody tr td").first.inner_text() != first or len(rows) == 1
        assert "ecg-" in page.inner_text("tbody")  # pseudonyms, never the files' names
        assert "_deg" not in page.inner_text("tbody") and " deg (" in page.inner_text("tbody")  # as a reader names it
        page.screenshot(path=str(artifacts() / f"summary-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # wide tables scroll in their box
        page.close()
