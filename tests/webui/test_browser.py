"""The whole UI in a real browser (Debian's chromium via Playwright) against `python -m webui` on
loopback, with the tiny model: register a dataset by upload, SFT with a live chart, DPO from it
with the four rewards/* curves, chat with both adapters side by side, export, and a broken upload
shown as a clear error. Screenshots of every tab go to test-artifacts/."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import DATA
from tests.webui import browser as ui

REWARD_TRACES = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


def preference_rows(n: int) -> list[dict]:
    """A small prompt/chosen/rejected file as a user would bring it (the seeds' SQL style)."""
    tables = ["users", "orders", "products", "employees"]
    rows = []
    for i in range(n):
        t = tables[i % len(tables)]
        rows.append({"question": f"Table {t}(id, name, total). Show the {i % 5 + 2} largest totals.",
                     "good": f"-- the {i % 5 + 2} largest totals\nSELECT name, total\nFROM {t}\n"
                             f"ORDER BY total DESC\nLIMIT {i % 5 + 2};",
                     "bad": f"select name,total from {t} order by total desc limit {i % 5 + 2}"})
    return rows


@pytest.fixture(scope="module")
def app(saves, tiny_model, tmp_path_factory):
    """The server (a subprocess, like `make run`) over the test session's saves/ and a copy of
    the sample datasets (uploads must not touch the repository's data/)."""
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    shutil.copytree(DATA, data_dir)
    proc, url = ui.start_server(saves, root / "server.log")
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
    yield page
    browser.close()
    pw.stop()


def set_short_run(page, stage: str, steps: int) -> None:
    ui.pick_field(page, "stage", stage)
    ui.set_text(page, "name", f"e2e-{stage}")
    ui.set_text(page, "training.max_steps", steps)
    ui.set_text(page, "training.logging_steps", 1)
    ui.set_text(page, "training.per_device_train_batch_size", 2)
    ui.set_text(page, "training.gradient_accumulation_steps", 1)
    ui.set_text(page, "training.learning_rate", 0.001)
    ui.set_text(page, "data.max_samples", 32)
    ui.set_text(page, "data.cutoff_len", 192)


def status_text(page) -> str:
    return page.locator("#wb-status").inner_text()


def wait_until_done(page, timeout: float) -> str:
    return ui.wait_for(lambda: "state: completed" in status_text(page) and status_text(page), timeout,
                       "the run to complete")


def test_click_through_sft_then_dpo(page, app):
    ui.open_tab(page, "Train")
    set_short_run(page, "sft", 40)
    ui.pick_field(page, "data.dataset", "sql_sft")
    page.get_by_role("button", name="Start", exact=True).click()
    counts = []
    ui.wait_for(lambda: "state: running" in status_text(page), 60, "the SFT run to start")
    while "state: running" in status_text(page):
        counts.append(ui.points(page, "loss"))
        page.wait_for_timeout(700)
    wait_until_done(page, 60)
    counts.append(ui.points(page, "loss"))
    growth = sorted(set(c for c in counts if c))
    assert len(growth) >= 2 and counts[-1] >= 40, f"loss chart points seen while running: {counts}"
    ui.screenshot(page, "train-sft")

    set_short_run(page, "dpo", 12)
    ui.pick_field(page, "data.dataset", "sql_dpo")
    parent = ui.field(page, "init_from").locator("input").input_value()
    assert "-sft-e2e-sft" in parent, parent  # the SFT run just made is DPO's default starting point
    page.get_by_role("button", name="Start", exact=True).click()
    ui.wait_for(lambda: "-dpo-e2e-dpo" in status_text(page), 30, "the DPO run to be followed")
    wait_until_done(page, 120)
    ui.wait_for(lambda: all(ui.points(page, t) == 12 for t in REWARD_TRACES), 15, "the rewards/* curves")
    titles = {t["name"]: t["title"] for t in ui.plot_traces(page)}
    assert titles["rewards/chosen"] == titles["rewards/rejected"]  # on one chart
    ui.screenshot(page, "train-dpo")

    ui.open_tab(page, "Runs")
    page.get_by_role("button", name="Refresh").click()
    table = page.locator(".wb-runs")
    ui.wait_for(lambda: "e2e-dpo" in table.inner_text(), 10, "the runs table")
    assert "completed" in table.inner_text()
    ui.screenshot(page, "runs")
