"""A distributed run from the browser: the Distributed section says what the machine has, the preview
shows the accelerate command, and Start trains on two CPU processes (ddp, gloo) to the end, the
status line saying how the run was launched."""

from __future__ import annotations

import re

from tests.webui import browser as ui


def test_a_two_process_run_started_from_the_train_tab(page, app):
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "sft", 4, name="e2e-ddp", dataset="sql_sft")
    page.locator("#wb-section-distributed").get_by_role("button").first.click()  # folded by default
    devices = page.locator("#wb-devices").inner_text()
    assert "This machine: no GPU" in devices and "CPU cores" in devices, devices
    ui.pick_field(page, "distributed.backend", "ddp")
    ui.set_text(page, "distributed.num_processes", 2)
    page.locator("#wb-preview").get_by_role("button").first.click()
    command = ui.wait_for(lambda: "accelerate launch" in (text := page.locator("#wb-cli-command").inner_text())
                          and text, 20, "the launch command in the preview")
    assert "distributed.backend=ddp" in command and "-m engine.train" in command
    ui.screenshot(page, "distributed-preview")

    page.get_by_role("button", name="Start", exact=True).click()
    name = ui.wait_for_started(page, "sft", "e2e-ddp")  # (the page may have followed an older, completed run)
    status = ui.wait_for(lambda: name in (text := ui.status_text(page)) and "state: completed" in text and text, 240,
                         "the run to complete")
    assert "launched as accelerate launch --config_file" in status and f"{name}/accelerate.yaml" in status, status
    assert "step 4/4" in status
    ui.screenshot(page, "distributed-completed")
    log = (app["saves"] / "runs" / name / "engine.log").read_text()
    digests = dict(re.findall(r"\[rank (\d)\]: trained weights sha256 (\w+)", log))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
