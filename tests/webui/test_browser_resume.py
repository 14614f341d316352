"""Resume in the browser: an SFT run of 60 steps whose engine is killed (SIGKILL) at step 29 shows as
crashed with the checkpoint Resume would use; Resume finishes it at step 60 in the same folder, and
the loss chart is one curve of 60 points."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.webui import browser as ui


def test_kill_at_step_29_then_resume_finishes_at_step_60(page, app):
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "sft", 60, name="e2e-resume", dataset="sql_sft")
    page.locator("#wb-training-advanced").get_by_role("button").first.click()  # save_steps is there
    ui.set_text(page, "training.save_steps", 10)
    page.get_by_role("button", name="Start", exact=True).click()
    name = ui.wait_for_started(page, "sft", "e2e-resume")
    status_file = app["saves"] / "runs" / name / "status.json"
    deadline = time.time() + 180
    while True:  # the file, not the page: the kill must land at step 29, before the next checkpoint
        status = json.loads(status_file.read_text())
        if status.get("step", 0) >= 29:
            break
        assert time.time() < deadline and status["state"] in ("queued", "running"), status
        time.sleep(0.02)
    os.kill(status["pid"], signal.SIGKILL)
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
