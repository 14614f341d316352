"""Resume in the browser: an SFT run of 60 steps whose engine is killed (SIGKILL) at step 29 shows as
crashed with the checkpoint Resume would use; Resume finishes it at step 60 in the same folder, and
the loss chart is one curve of 60 points."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import engines_pause_at, kill_when_paused
from tests.webui import browser as ui


@pytest.fixture(scope="module")
def paused_engines(tmp_path_factory):
    """The engines this module's server starts pause at step 29, so the kill lands there on any
    machine, before the checkpoint of step 30 (set before the server starts: its engines inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in engines_pause_at(tmp_path_factory.mktemp("pause"), 29).items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def app(paused_engines, app):
    return app


def test_kill_at_step_29_then_resume_finishes_at_step_60(page, app):
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "sft", 60, name="e2e-resume", dataset="sql_sft")
    page.locator("#wb-training-advanced").get_by_role("button").first.click()  # save_steps is there
    ui.set_text(page, "training.save_steps", 10)
    page.get_by_role("button", name="Start", exact=True).click()
    name = ui.wait_for_started(page, "sft", "e2e-resume")
    status_file = app["saves"] / "runs" / name / "status.json"
    deadline = time.time() + 180
    while not (status := json.loads(status_file.read_text())).get("pid"):
        assert time.time() < deadline, status
        time.sleep(0.05)
    kill_when_paused(status["pid"])  # as the out-of-memory killer would, at step 29
    ui.wait_for(lambda: "state: crashed" in ui.status_text(page), 30, "the run to show as crashed")
    ui.wait_for(lambda: "Resume continues it from checkpoints/checkpoint-20 (step 20)" in ui.status_text(page), 10,
                "the resume hint")
    ui.screenshot(page, "resume-crashed")

    page.get_by_role("button", name="Resume", exact=True).click()
    ui.wait_until_done(page, 180)
    assert "step 60/60" in ui.status_text(page)
    ui.wait_for(lambda: ui.points(page, "loss") == 60, 15, "one loss curve of 60 points")
    ui.screenshot(page, "resume-completed")
    steps = [json.loads(line)["step"] for line in (status_file.parent / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 61))
