"""The browser tests' server and page: `python -m webui` on loopback over the test session's saves/
and a copy of the sample datasets, and one chromium page on it per test module."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import DATA
from tests.webui import browser as ui


@pytest.fixture(autouse=True)
def allowed_test_folders(tmp_path_factory, monkeypatch):
    """The handler tests work on throw-away folders under pytest's temp root: the web UI may use
    them, as it may use a folder given with --allow-dir (webui.access). A test of the refusal sets
    WORKBENCH_ALLOWED_DIRS itself."""
    monkeypatch.setenv("WORKBENCH_ALLOWED_DIRS", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def app(saves, tiny_model, tmp_path_factory):
    """The server (a subprocess, like `make run`) over the test session's saves/ and a copy of
    the sample datasets (uploads must not touch the repository's data/)."""
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    shutil.copytree(DATA, data_dir)
    proc, url = ui.start_server(saves, root / "server.log", allow=[root])
    try:
        yield {"url": url, "data_dir": data_dir, "root": root, "saves": saves}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(app):
    pw, browser = ui.open_browser()
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(app["url"])
    ui.field(page, "model.name_or_path").wait_for()
    ui.pick_field(page, "model.name_or_path", "tiny")
    # The dataset folder is an advanced Data setting of the Train tab; the Datasets tab uses it too.
    page.locator("#wb-data-advanced").get_by_role("button").first.click()
    ui.set_text(page, "data.dataset_dir", app["data_dir"])
    yield page
    browser.close()
    pw.stop()
