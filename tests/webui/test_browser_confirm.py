"""The two-step removals in a real browser: Delete run… then "Yes, delete it" on the Runs tab, and
Remove… then "Yes, remove the entry" on the Datasets tab. The confirm step acts only on what the
first step asked about in the same page session (webui/tabs/runs.py, webui/tabs/datasets.py)."""

from __future__ import annotations

import json

from engine.data.registry import register_dataset
from tests.helpers import make_run
from tests.webui import browser as ui


def picker(page, tab: str, label: str):
    return page.locator(f"{tab} .block", has=page.locator(f'[aria-label="{label}"]')).last


def test_delete_a_run_in_two_steps(page, app):
    run = make_run("sft", "failed", name="to-delete")
    ui.open_tab(page, "Runs")
    tab = page.locator("#wb-runs-tab")
    ui.pick(page, picker(page, "#wb-runs-tab", "run to view or delete"), run.name)
    tab.get_by_role("button", name="Delete run…", exact=True).click()
    ui.wait_for(lambda: "This cannot be undone" in tab.inner_text(), 30, "the question")
    assert run.path.exists()
    tab.get_by_role("button", name="Yes, delete it", exact=True).click()
    ui.wait_for(lambda: f"Deleted {run.name}." in tab.inner_text(), 30, "the deletion")
    assert not run.path.exists()


def test_remove_a_dataset_in_two_steps(page, app):
    register_dataset(app["data_dir"], "to_remove", {"file_name": "sql_sft_train.json"})
    ui.open_tab(page, "Datasets")
    tab = page.locator("#wb-datasets")
    ui.pick(page, picker(page, "#wb-datasets", "registered dataset: check, preview, rename or remove"), "to_remove")
    tab.get_by_role("button", name="Remove…", exact=True).click()
    ui.wait_for(lambda: "Only the registry entry goes" in tab.inner_text(), 30, "the question")
    tab.get_by_role("button", name="Yes, remove the entry (the file stays)", exact=True).click()
    ui.wait_for(lambda: "Removed to_remove" in tab.inner_text(), 30, "the removal")
    registry = json.loads((app["data_dir"] / "dataset_info.json").read_text())
    assert "to_remove" not in registry and (app["data_dir"] / "sql_sft_train.json").exists()
