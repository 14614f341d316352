"""The page as a user sees it in a 1440 x 900 window of the real browser (Debian's chromium): every
table column in view, the parent run's name in full, checkboxes as wide as the other fields, the
engine log at its newest line, a reload during a run keeping the run's own settings in the form,
and Chinese text drawn in a real font. Screenshots go to test-artifacts/layout-*.png.

The runs are folders made by hand in a saves/ of this module's own (nothing trains): a finished
SFT run with a long name and a DPO run from it that is "running", its engine played by this test
process. Each test reloads the page and stands alone. A page load's answer held back until the user has
typed keeps what was typed (webui/form_answers.py)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from engine.config import dump_yaml, from_dict
from tests.helpers import dpo_metrics, make_run, sft_metrics, tiny_config
from tests.webui import browser as ui

WIDTH, HEIGHT = 1440, 900
LOG_LINES = 100


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("layout-saves")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_SAVES", str(root))
        parent = make_run("sft", "completed", name="sql-sft-baseline", metrics=sft_metrics(),
                          stamp="20260101-000001")
        live = make_run("dpo", "running", name="penn-dpo", metrics=dpo_metrics(), stamp="20260101-000002",
                        pid=os.getpid(), step=2, max_steps=18,  # this test process plays the engine
                        warnings=[{"code": "chosen_reward_falling", "message": "rewards/chosen fell", "step": 2}],
                        log="".join(f"2026-01-01 00:00:{i % 60:02d} INFO engine: line {i}\n" for i in range(LOG_LINES)))
    cfg = tiny_config("dpo", data={"dataset": "penn_pref"}, dpo={"beta": 0.2})
    live.config_file.write_text(dump_yaml(from_dict({**cfg, "name": "penn-dpo", "init_from": str(parent.path)})))
    return {"root": root, "parent": parent, "live": live}


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    proc, url = ui.start_server(runs["root"], tmp_path_factory.mktemp("layout") / "server.log")
    pw, browser = ui.open_browser()
    try:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.set_default_timeout(ui.PAGE_TIMEOUT_MS)
        page.goto(url)
        yield page
    finally:
        browser.close()
        pw.stop()
        proc.terminate()
        proc.wait(timeout=30)


def reload(page) -> None:
    page.reload()
    ui.field(page, "model.name_or_path").wait_for()


def followed(page, run) -> None:
    """Wait until the Train tab follows the run and its log is shown."""
    ui.wait_for(lambda: f"{run.name}" in page.locator("#wb-status").inner_text(), 60, "the live run to be followed")
    ui.wait_for(lambda: "line" in page.locator("#wb-train .wb-log textarea").input_value(), 30, "its log")


def overflowing_tables(page) -> list[str]:
    """The visible tables wider than their box (a column cut off, or a scroll bar to reach it)."""
    return page.evaluate("""() => [...document.querySelectorAll('.table-container')]
        .filter(t => t.offsetParent !== null)
        .map(t => [t.querySelector('.label')?.innerText.trim(), t.querySelector('.virtual-table-viewport')])
        .filter(([, box]) => box && box.scrollWidth > box.clientWidth + 1)
        .map(([label, box]) => `${label}: ${box.scrollWidth} px of content in ${box.clientWidth} px`)""")


def fits(page) -> None:
    assert overflowing_tables(page) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= WIDTH


def test_the_runs_and_datasets_tables_fit_the_window(page, runs):
    reload(page)
    ui.open_tab(page, "Runs")
    page.get_by_role("button", name="Refresh", exact=True).click()
    table = page.locator(".wb-runs")
    ui.wait_for(lambda: runs["live"].name in table.inner_text() and "final metrics" in table.inner_text(), 30,
                "the runs table")
    fits(page)
    ui.screenshot(page, "layout-runs")
    ui.open_tab(page, "Datasets")
    ui.wait_for(lambda: "penn_pref_eval" in page.locator("#wb-datasets").inner_text(), 30, "the datasets table")
    fits(page)
    ui.screenshot(page, "layout-datasets")


def test_the_parent_run_is_shown_in_full_and_checkboxes_are_not_squeezed(page, runs):
    reload(page)
    followed(page, runs["live"])
    box = ui.field(page, "init_from").locator("input")
    ui.wait_for(lambda: runs["parent"].name in box.input_value(), 30, "the live run's parent in init_from")
    assert box.input_value() == f"{runs['parent'].name} (completed)"
    width = box.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert width[0] <= width[1], f"init_from shows {width[1]} px of its {width[0]} px value"
    page.locator("#wb-training-advanced").get_by_role("button").first.click()  # gradient_checkpointing is there
    ui.field(page, "training.gradient_checkpointing").wait_for()
    widths = page.evaluate("""() => [...document.querySelectorAll('.wb-checkbox')].filter(b => b.offsetParent)
        .map(b => [b.id, Math.round(b.getBoundingClientRect().width)])""")
    assert widths and all(w >= 200 for _id, w in widths), widths
    fits(page)
    ui.screenshot(page, "layout-train")


def test_a_reload_during_a_run_fills_the_form_with_its_settings_and_shows_its_engine(page, runs):
    reload(page)
    followed(page, runs["live"])
    ui.wait_for(lambda: ui.field(page, "stage").locator("input").input_value() == "dpo", 30, "the run's stage")
    assert ui.field(page, "data.dataset").locator("input").input_value() == "penn_pref"
    assert ui.field(page, "dpo.beta").locator("input").input_value() == "0.2"
    assert f"The form shows the settings of {runs['live'].name}" in page.locator("#wb-train").inner_text()
    assert "state: running" in page.locator("#wb-status").inner_text()
    resources = page.locator("#wb-resources").inner_text()
    assert f"engine {runs['live'].name}:" in resources and "no engine running" not in resources, resources


def test_a_late_page_load_answer_keeps_what_was_typed_before_it_arrived(page, runs):
    """The page load fills the form with the followed run's settings; on a busy machine its answer can
    come after the user typed. Held back here until a name is typed: the name typed stays, the rest of
    the form is the run's. (Under load the page may even ask after the typing: the name, changed from
    the page's initial value, stays then too; test_named covers that order by hand.)"""
    with ui.answer_held(page, ui.event_id(page, "page_loaded")) as held:
        reload(page)
        ui.set_text(page, "name", "typed-meanwhile")
        assert held, "the page load's answer was not held back"
    followed(page, runs["live"])
    ui.wait_for(lambda: ui.field(page, "stage").locator("input").input_value() == "dpo", 30, "the run's stage")
    assert ui.field(page, "data.dataset").locator("input").input_value() == "penn_pref"
    assert ui.field(page, "name").locator("input, textarea").first.input_value() == "typed-meanwhile"


def log_position(page) -> dict:
    return page.locator("#wb-train .wb-log textarea").evaluate(
        "el => ({top: el.scrollTop, height: el.clientHeight, content: el.scrollHeight, text: el.value})")


def at_the_bottom(position: dict) -> bool:
    return position["content"] > position["height"] and position["top"] + position["height"] >= position["content"] - 1


def test_the_engine_log_shows_its_newest_line_at_the_bottom(page, runs):
    reload(page)
    followed(page, runs["live"])
    position = ui.wait_for(lambda: (p := log_position(page)) and at_the_bottom(p) and p, 15, "the log at its end")
    assert position["text"].splitlines()[-1].endswith(f"line {LOG_LINES - 1}")
    with runs["live"].log_file.open("a") as log:  # the engine writes more
        log.write("".join(f"2026-01-01 00:01:00 INFO engine: more {i}\n" for i in range(5)))
    ui.wait_for(lambda: (p := log_position(page))["text"].endswith("more 4") and at_the_bottom(p), 15,
                "the new lines, in view")
    ui.screenshot(page, "layout-log")


def test_chinese_text_is_drawn_in_a_cjk_font(page, runs):
    """`make test` installs a CJK font when fontconfig knows none; without one, Chinese dataset rows,
    prompts and answers are drawn as empty boxes, all alike."""
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout \
        if shutil.which("fc-list") else ""
    assert fonts.strip(), "no font for Chinese: `make browser` (part of `make test`) installs fonts-droid-fallback"
    reload(page)
    followed(page, runs["live"])  # the load done (typing into a page still loading timed out under load)
    glyphs = page.evaluate("""(chars) => chars.map(ch => {
        const canvas = document.createElement('canvas'); canvas.width = canvas.height = 48;
        const g = canvas.getContext('2d'); g.font = '36px sans-serif'; g.fillText(ch, 4, 40);
        return Array.from(g.getImageData(0, 0, 48, 48).data).join(',');
    })""", ["中", "文", "\U0010FFFD"])  # the last: a code point no font draws (the box)
    assert glyphs[0] != glyphs[1] and glyphs[0] != glyphs[2], "Chinese characters are drawn as the same empty box"
    ui.set_text(page, "name", "中文数据集的运行")
    box = ui.field(page, "name")
    path = ui.ARTIFACTS / "layout-chinese.png"
    ui.ARTIFACTS.mkdir(exist_ok=True)
    box.screenshot(path=str(path))
