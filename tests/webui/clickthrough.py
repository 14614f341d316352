"""A first-time user's click-through on the real SmolLM2 model, timed (not part of the suite: it
trains for minutes). `make model` first, then: `.venv/bin/python -m tests.webui.clickthrough`.

Starts the web UI over the real saves/, previews the SQL preference data, trains a short SFT run,
a DPO run from it, chats with base / SFT / DPO side by side, evaluates the DPO run (a job: base,
SFT and DPO answer held-out prompts) and exports it (a job too). Prints the time of each step and
writes screenshots to test-artifacts/clickthrough-*.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.webui import browser as ui

SAVES = ui.REPO / "saves"
EVAL_PROMPTS = 10
PROMPT = ("Write a SQL query. Table departments(id, name, location, budget). Find the budget of departments "
          "with a budget under 1000000 whose name contains 'Sales'.")


def timed(label: str, times: dict, start: float) -> None:
    times[label] = round(time.time() - start, 1)
    print(f"{label}: {times[label]} s", flush=True)


def train(page, stage: str, dataset: str, samples: int, extra: dict, times: dict) -> str:
    ui.open_tab(page, "Train")
    ui.pick_stage(page, stage)
    ui.set_text(page, "name", f"click-{stage}")
    ui.pick_field(page, "data.dataset", dataset)
    ui.set_text(page, "data.max_samples", samples)
    for key, value in extra.items():
        ui.set_text(page, key, value)
    start = time.time()
    page.get_by_role("button", name="Start", exact=True).click()
    status = page.locator("#wb-status")
    ui.wait_for(lambda: "state: running" in status.inner_text(), 120, f"{stage} to start")
    timed(f"{stage}: Start -> engine running", times, start)
    ui.wait_for(lambda: ui.points(page, "loss") > 0, 600, f"{stage}'s first loss point")
    timed(f"{stage}: Start -> first chart point", times, start)
    ui.screenshot(page, f"clickthrough-train-{stage}-running")
    ui.wait_for(lambda: "state: completed" in status.inner_text(), 1800, f"{stage} to complete", poll=5)
    timed(f"{stage}: Start -> completed", times, start)
    ui.screenshot(page, f"clickthrough-train-{stage}")
    return page.locator("#wb-followed-run input").input_value()


def main() -> None:
    times: dict = {}
    start = time.time()
    proc, url = ui.start_server(SAVES, Path("/tmp/clickthrough-server.log"))
    timed("server up", times, start)
    pw, browser = ui.open_browser()
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        start = time.time()
        page.goto(url)
        ui.field(page, "model.name_or_path").wait_for()
        timed("page loaded", times, start)
        assert ui.field(page, "model.name_or_path").locator("input").input_value() == "SmolLM2-135M-Instruct"

        ui.open_tab(page, "Datasets")
        start = time.time()
        ui.pick(page, page.locator("#wb-datasets .block", has=page.locator(
            '[aria-label="registered dataset: check, preview, rename or remove"]')).last, "sql_dpo")
        ui.wait_for(lambda: "<|im_start|>assistant" in page.locator("#wb-datasets").inner_text(), 120, "preview")
        timed("datasets: check + preview sql_dpo with SmolLM2's template", times, start)
        ui.screenshot(page, "clickthrough-datasets")

        sft = train(page, "sft", "sql_sft", 96, {}, times)
        dpo = train(page, "dpo", "sql_dpo", 64, {"training.learning_rate": 0.0001, "dpo.pref_ftx": 1}, times)
        print("runs:", sft, dpo, flush=True)

        ui.open_tab(page, "Chat")
        columns = page.locator("#wb-chat-columns")
        for run in (sft, dpo):
            ui.pick(page, columns, ui.option_containing(page, columns, run))
        page.locator("#wb-chat-prompt textarea").fill(PROMPT)
        start = time.time()
        page.get_by_role("button", name="Send", exact=True).click()
        chat = page.locator("#wb-chat")
        ui.wait_for(lambda: chat.inner_text().count("tokens/s") >= 3 and "✍️" not in chat.inner_text(), 600,
                    "the answers")
        timed("chat: 3 columns answered", times, start)
        answers = chat.locator("textarea[disabled], textarea[readonly]")
        times["answers"] = [answers.nth(i).input_value() for i in range(answers.count())]
        ui.screenshot(page, "clickthrough-chat")

        ui.open_tab(page, "Evaluate")
        picker = page.locator("#wb-eval-run")
        ui.pick(page, picker, ui.option_containing(page, picker, dpo))
        box = page.locator("#wb-eval-prompts input[type=number]")
        box.fill(str(EVAL_PROMPTS))
        box.press("Tab")
        start = time.time()
        page.locator("#wb-eval-start").click()
        status = page.locator("#wb-eval-status")
        ui.wait_for(lambda: "✅" in status.inner_text() or "❌" in status.inner_text(), 1800, "the evaluation",
                    poll=5)
        assert "✅" in status.inner_text(), status.inner_text()
        timed(f"evaluate: DPO run, base/SFT/DPO on {EVAL_PROMPTS} held-out prompts", times, start)
        times["evaluation"] = page.locator("#wb-eval-summary").inner_text() + "\n" + \
            page.locator("#wb-eval-table").inner_text()
        ui.screenshot(page, "clickthrough-evaluate")

        ui.open_tab(page, "Export")
        picker = page.locator("#wb-export-run")
        ui.pick(page, picker, ui.option_containing(page, picker, dpo))
        start = time.time()
        page.get_by_role("button", name="Export", exact=True).click()
        ui.wait_for(lambda: (SAVES / "exports" / dpo / "model.safetensors").exists(), 600, "the export")
        timed("export: merged model written", times, start)
        ui.screenshot(page, "clickthrough-export")
    finally:
        browser.close()
        pw.stop()
        proc.terminate()
    print(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
