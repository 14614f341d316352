"""A new user's own files in a real browser: each layout of tests/fixtures/datasets is uploaded on
the Datasets tab and must come out detected, mapped and checked clean with no click but the upload;
Register then writes exactly the entry `workbench data register` would. Screenshots go to
test-artifacts/ (the seed-000 file shows its Chinese preview with a CJK font)."""

from __future__ import annotations

import json

import pytest

from engine.data import intake
from tests.helpers import LAYOUT_FIXTURES
from tests.webui import browser as ui

LAYOUT_FILES = sorted(p.name for p in LAYOUT_FIXTURES.iterdir() if p.name != "unknown_layout.jsonl")


def shown(page) -> str:
    """The "Register a dataset" section (the tab's registered-dataset section has a report of its own)."""
    return page.locator("#wb-dataset-register").inner_text()


def checked(text: str) -> bool:
    return "rows, no errors" in text or "Fix these" in text or "no known layout fits" in text


def upload_and_wait(page, path) -> str:
    """Upload, then wait for the detection line and the check's verdict; the tab's text. The previous
    file is cleared first, and its report gone, so its verdict cannot be taken for this file's."""
    ui.open_tab(page, "Datasets")
    clear = page.locator("#wb-dataset-upload").get_by_label("Clear")
    if clear.count():
        clear.first.click()
        ui.wait_for(lambda: not checked(shown(page)), 30, "the previous file's report to clear")
    ui.upload_dataset(page, path)

    def verdict():
        text = shown(page)
        return text if f"Read {path.name}" in text and checked(text) else None
    return ui.wait_for(verdict, 60, f"the check of {path.name}")


@pytest.mark.parametrize("name", LAYOUT_FILES)
def test_each_layout_is_detected_and_checked_clean_by_the_upload_alone(page, app, name):
    path = LAYOUT_FIXTURES / name
    expected = intake.check_file(path)
    text = upload_and_wait(page, path)
    assert f"Detected {expected.detection.layout}: columns mapped" in text, text
    assert f"{len(expected.rows)} rows, no errors." in text, text
    tab = page.locator("#wb-dataset-register")
    assert tab.get_by_label(expected.detection.formatting, exact=True).is_checked()
    stem = path.stem
    tab.get_by_role("button", name="Register", exact=True).click()
    ui.wait_for(lambda: f"Registered {stem}:" in shown(page), 30, "the registration")
    entry = json.loads((app["data_dir"] / "dataset_info.json").read_text())[stem]
    assert entry == {**expected.entry, "file_name": entry["file_name"]}
    assert (app["data_dir"] / entry["file_name"]).read_bytes() == path.read_bytes()
    if name == "lf_alpaca_ranking_seed000.jsonl":
        ui.wait_for(lambda: "马尔代夫" in shown(page), 30, "the Chinese preview")
        ui.screenshot(page, "datasets-seed000-layout")


def test_a_file_that_fits_no_layout_lists_the_layouts_tried(page, app):
    text = upload_and_wait(page, LAYOUT_FIXTURES / "unknown_layout.jsonl")
    assert "no known layout fits the columns q, a, b; tried:" in text
    assert "unpaired KTO rows: no column of true/false labels" in text and "role None" not in text
    ui.screenshot(page, "datasets-unknown-layout")


def test_changing_the_detected_format_replaces_the_detected_line(page, app):
    upload_and_wait(page, LAYOUT_FIXTURES / "lf_alpaca_ranking_seed000.jsonl")
    page.locator("#wb-dataset-register").get_by_label("sharegpt", exact=True).check()
    ui.wait_for(lambda: "you set the format to sharegpt" in shown(page), 30, "the changed-format line")
    assert "columns mapped, see the check below" not in shown(page)


def test_the_seed_000_layout_trains_dpo_from_the_train_tab(page, app):
    """Seed 000's own preference file, uploaded as it is, trains DPO with its rewards/* charts."""
    path = LAYOUT_FIXTURES / "lf_alpaca_ranking_seed000.jsonl"
    name = "seed000_dpo"
    if name not in json.loads((app["data_dir"] / "dataset_info.json").read_text()):
        intake.register_file(intake.check_file(path), app["data_dir"], name)
    page.reload()  # the Train tab's dataset list, re-read; the dataset folder set again as the page fixture does
    ui.field(page, "model.name_or_path").wait_for()
    ui.pick_field(page, "model.name_or_path", "tiny")
    page.locator("#wb-data-advanced").get_by_role("button").first.click()
    ui.set_text(page, "data.dataset_dir", app["data_dir"])
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "dpo", 4)
    ui.set_text(page, "name", "seed000")
    ui.set_text(page, "data.cutoff_len", 320)
    ui.pick_field(page, "data.dataset", name)
    page.get_by_role("button", name="Start", exact=True).click()
    ui.wait_for(lambda: "-dpo-seed000" in ui.status_text(page), 90, "the DPO run to be followed")
    status = ui.wait_until_done(page, 240)
    assert "step 4/4" in status, status
    ui.wait_for(lambda: ui.points(page, "rewards/margins") >= 4, 30, "the rewards/margins curve")
    ui.screenshot(page, "train-dpo-seed000-layout")
