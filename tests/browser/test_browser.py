"""The course as a person sees it, in a real browser (Debian's Chromium driven by Playwright).

Run by ``make browser-test`` (after ``make site``), not by ``make test``: it needs the built site,
Chromium and a free port. It (a) opens every chapter page of the rendered course and checks that
its figures and its "What you measured" table are there, saving a screenshot of each to
``results/screenshots/``; (b) starts JupyterLab at the repository root, opens chapter 00's
exercise notebook from the learner's workspace, runs it, sees the one-line message of the first
unwritten exercise, saves it, and checks that no tracked file changed.
"""
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

if os.environ.get("GLASSBOX_BROWSER") != "1":
    pytest.skip("browser tests run through `make browser-test`", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "site"
SHOTS = ROOT / "results" / "screenshots"
CHAPTERS = [p.stem for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no Chromium found: `apt-get install chromium` (the CI script does)")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_site_page_shows_figures_and_results(browser, chapter):
    page_path = SITE / f"{chapter}.html"
    assert page_path.exists(), f"{page_path} missing: run `make site` first"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_path.as_uri())
    figures = page.locator("img")
    assert figures.count() >= 1, f"{chapter}: no figure on the page"
    figures.first.scroll_into_view_if_needed()
    assert page.evaluate("img => img.naturalWidth", figures.first.element_handle()) > 0, "a figure did not load"
    expect(page.get_by_text("What you measured", exact=False).first).to_be_attached()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{chapter}.png"))
    page.close()


def test_site_landing_page_lists_every_chapter(browser):
    page = browser.new_page()
    page.goto((SITE / "index.html").as_uri())
    for chapter in CHAPTERS:
        assert page.locator(f"a[href$='{chapter}.html']").count() >= 1, f"the landing page does not link {chapter}"
    page.screenshot(path=str(SHOTS / "index.png"), full_page=True)
    page.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracked_changes() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


@pytest.fixture
def jupyterlab():
    subprocess.run(["make", "-s", "workspace"], cwd=ROOT, check=True)
    port, token = free_port(), secrets.token_hex(8)
    jupyter = Path(os.sys.executable).with_name("jupyter")
    server = subprocess.Popen([str(jupyter), "lab", "--no-browser", f"--port={port}", "--allow-root",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
                               "--ServerApp.ip=127.0.0.1"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url, token
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def fresh_copy():
    """Chapter 00's exercise notebook as a learner gets it, beside (never over) the learner's own copy."""
    notebook = ROOT / "workspace" / "00_orientation.browser-test.ipynb"
    shutil.copy(ROOT / "chapters" / "00_orientation.ipynb", notebook)
    yield notebook
    for leftover in (notebook, notebook.with_suffix(".py")):       # the pairing writes the .py on save
        leftover.unlink(missing_ok=True)


def test_learner_runs_and_saves_chapter_00_without_touching_tracked_files(browser, jupyterlab, fresh_copy):
    url, token = jupyterlab
    before = tracked_changes()
    notebook = fresh_copy
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/workspace/{notebook.name}?token={token}&reset")   # no restored layout
    page.wait_for_timeout(3000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "jupyterlab_opened.png"))
    expect(page.locator(".jp-NotebookPanel").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
    news = page.get_by_role("button", name="No")                # JupyterLab's "get notified about news?" toast
    if news.count():
        news.first.click()
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    message = page.locator(".jp-OutputArea-output pre", has_text="is not written yet").first
    expect(message).to_be_visible(timeout=240_000)
    message.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "jupyterlab_00_first_exercise.png"))
    shown = (message.text_content() or "").strip().splitlines()
    assert 1 <= len(shown) <= 5, f"the failing check shows {len(shown)} lines: {shown}"
    assert "residual_norms is not written yet" in shown[-1], shown
    modified = notebook.stat().st_mtime
    page.keyboard.press("Control+s")
    for _ in range(60):
        if notebook.stat().st_mtime > modified:
            break
        time.sleep(0.5)
    assert notebook.stat().st_mtime > modified, "the notebook was not saved"
    assert "is not written yet" in notebook.read_text(), "the saved notebook lacks the check's output"
    assert tracked_changes() == before, f"saving in the workspace changed tracked files:\n{tracked_changes()}"
    page.close()
