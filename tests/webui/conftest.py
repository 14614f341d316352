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
    """The server (a subprocess, like `make run`) over a saves/ of this module's own (the session's
    models linked in) and a copy of the sample datasets (uploads must not touch the repository's
    data/). A module of its own: a run another module left "running" (its pid this test process)
    would otherwise hold this server's queue, and a Start here would wait behind it for ever."""
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    shutil.copytree(DATA, data_dir)
    own = root / "saves"
    own.mkdir()
    (own / "models").symlink_to(saves / "models", target_is_directory=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_SAVES", str(own))  # the tests' own reads and writes go where the server's do
        proc, url = ui.start_server(own, root / "server.log", allow=[root])
        try:
            yield {"url": url, "data_dir": data_dir, "root": root, "saves": own}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(app):
    pw, browser = ui.open_browser()
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(ui.PAGE_TIMEOUT_MS)
    page.goto(app["url"])
    ui.field(page, "model.name_or_path").wait_for()
    ui.pick_field(page, "model.name_or_path", "tiny")
    # The dataset folder is an advanced Data setting of the Train tab; the Datasets tab uses it too.
    page.locator("#wb-data-advanced").get_by_role("button").first.click()
    ui.set_text(page, "data.dataset_dir", app["data_dir"])
    yield page
    browser.close()
    pw.stop()
