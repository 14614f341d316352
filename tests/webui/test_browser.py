"""The whole UI in a real browser (Debian's chromium via Playwright) against `python -m webui` on
loopback, with the tiny model: register a dataset by upload, SFT with a live chart, DPO from it
with the four rewards/* curves, chat with both adapters side by side, export, RM then PPO and an
evaluation, and a broken upload shown as a clear error. Screenshots of every tab go to
test-artifacts/.

Each test stands alone (`pytest tests/webui/test_browser.py::TEST` passes): what it needs from the
others (a preference dataset, a finished SFT run) comes from a fixture that makes it when no test
before has."""

from __future__ import annotations

import json
import re

import pytest

from engine.config import from_dict
from engine.data.registry import read_registry, register_dataset
from engine.runs.folder import RunFolder, create_run, list_runs
from engine.runs.process import start_engine, wait
from engine.runs.status import State
from tests.helpers import tiny_config
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
def pairs_dataset(app) -> str:
    """A preference dataset for the DPO and RM runs, registered the way an upload registers it."""
    name = "e2e_pairs"
    if name not in read_registry(app["data_dir"]):
        path = app["root"] / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in preference_rows(24)))
        entry = {"ranking": True, "columns": {"prompt": "question", "chosen": "good", "rejected": "bad"}}
        register_dataset(app["data_dir"], name, entry, copy_from=path)
    return name


def sft_run(app) -> RunFolder:
    """The newest finished e2e-sft run (the click-through test makes one), else one trained here."""
    done = [r for r in list_runs() if r.name.endswith("-sft-e2e-sft") and r.status().state == State.COMPLETED]
    if done:
        return done[0]
    cfg = tiny_config("sft", data={"dataset_dir": str(app["data_dir"])}, training={"max_steps": 8})
    run = create_run(from_dict({**cfg, "name": "e2e-sft"}))
    assert wait(run, start_engine(run), interval=0.2).state == State.COMPLETED, run.log_file.read_text()[-2000:]
    return run


def declare_probe(page, dataset: str, name: str, kind: str, value: str) -> None:
    """On the Datasets tab: pick the dataset, open its task probes, declare one."""
    ui.open_tab(page, "Datasets")
    tab = page.locator("#wb-datasets")
    ui.pick(page, tab.locator(".block", has=page.locator(
        '[aria-label="registered dataset: check, preview, rename or remove"]')).last, dataset)
    page.locator("#wb-dataset-probes").get_by_role("button").first.click()
    page.locator("#wb-probe-name textarea, #wb-probe-name input").first.fill(name)
    ui.pick(page, page.locator("#wb-probe-kind"), kind)
    page.locator("#wb-probe-value textarea, #wb-probe-value input").first.fill(value)
    tab.get_by_role("button", name="Declare probe", exact=True).click()
    ui.wait_for(lambda: f"Declared probe {name}" in tab.inner_text(), 30, "the probe's declaration")
    ui.wait_for(lambda: f"{name}: {kind}" in page.locator("#wb-dataset-probes-declared").inner_text(), 10,
                "the declared probes")


def parent_shown(page) -> str:
    """What the Train tab's parent-run picker shows."""
    return ui.field(page, "init_from").locator("input").input_value()


def registry(app) -> dict:
    return json.loads((app["data_dir"] / "dataset_info.json").read_text())


def test_a_broken_upload_is_a_clear_error_and_registers_nothing(page, app):
    before = (app["data_dir"] / "dataset_info.json").read_bytes()
    broken = app["root"] / "broken_pairs.jsonl"
    lines = [json.dumps(r) for r in preference_rows(3)]
    lines.insert(2, '{"question": "Table t(id). All ids.", "good": "SELECT id FROM t;", "bad": ')  # cut off
    broken.write_text("\n".join(lines) + "\n")
    ui.open_tab(page, "Datasets")
    ui.upload_dataset(page, broken)
    error = ui.wait_for(lambda: "❌" in page.locator("#wb-datasets").inner_text() and
                        page.locator("#wb-datasets").inner_text(), 30, "the upload's error")
    assert "broken_pairs.jsonl, line 3: not valid JSON" in error, error
    ui.screenshot(page, "datasets-broken-upload")
    page.locator("#wb-datasets").get_by_role("button", name="Register", exact=True).click()
    ui.wait_for(lambda: "Upload a file or pick one first" in page.locator("#wb-datasets").inner_text(), 30,
                "Register's answer: nothing to register")
    assert (app["data_dir"] / "dataset_info.json").read_bytes() == before
    assert not (app["data_dir"] / "broken_pairs.jsonl").exists()


def test_register_a_preference_dataset_by_upload(page, app):
    pairs = app["root"] / "my_pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in preference_rows(24)))
    ui.open_tab(page, "Datasets")
    ui.upload_dataset(page, pairs)
    tab = page.locator("#wb-datasets")
    ui.wait_for(lambda: tab.locator("#wb-dataset-name textarea").input_value() == "my_pairs", 30, "the name guess")
    # The columns have names no convention knows: the user maps them from dropdowns of the file's columns.
    tab.get_by_label("prompt-chosen-rejected").check()
    for role, column in (("prompt", "question"), ("chosen", "good"), ("rejected", "bad")):
        ui.pick(page, tab.locator(f"#wb-dataset-{role}"), column)
    tab.get_by_role("button", name="Check", exact=True).click()
    ui.wait_for(lambda: "24 rows" in tab.inner_text(), 30, "the check report")
    ui.wait_for(lambda: "<|im_start|>assistant" in tab.inner_text(), 30, "the chat-template preview")
    tab.get_by_role("button", name="Register", exact=True).click()
    ui.wait_for(lambda: "Registered" in tab.inner_text(), 30, "the registration")
    entry = registry(app)["my_pairs"]
    assert entry["ranking"] is True and (app["data_dir"] / entry["file_name"]).read_bytes() == pairs.read_bytes()
    assert entry["columns"]["prompt"] == "question" and entry["columns"]["chosen"] == "good"
    ui.screenshot(page, "datasets")


def test_click_through_sft_then_dpo_then_chat_and_export(page, app, pairs_dataset):
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "sft", 400)  # long enough to be seen running: 40 tiny steps can end in 2 s
    ui.pick_field(page, "data.dataset", "sql_sft")
    page.get_by_role("button", name="Start", exact=True).click()
    counts, checks, next_checks = [], set(), set()

    def ended() -> bool:  # the loss chart's points and the sample checks shown, at each poll while it trains
        status = ui.status_text(page)
        counts.append(ui.points(page, "loss"))
        if "state: running" in status:
            checks.update(int(s) for s in re.findall(r"step (\d+)", page.locator("#wb-samples").inner_text()))
            next_checks.update(re.findall(r"checked next at step (\d+)", status))
        return "state: running" not in status
    ui.wait_for(lambda: "state: running" in ui.status_text(page), 120, "the SFT run to start",
                shown=lambda: ui.status_text(page) + " | " + page.locator("#wb-train").inner_text()[-1500:])
    ui.wait_for(ended, 240, "the SFT run to end", poll=0.7)
    ui.wait_until_done(page, 60)
    counts.append(ui.points(page, "loss"))
    growth = sorted(set(c for c in counts if c))
    assert len(growth) >= 2 and counts[-1] >= 40, f"loss chart points seen while running: {counts}"
    # the model's answers were checked between the start and the end, and shown before the run ended
    assert any(0 < step < 400 for step in checks), f"sample steps shown while running: {sorted(checks)}"
    assert next_checks, "the status line never said when the answers are checked next"
    ui.screenshot(page, "train-sft")

    declare_probe(page, pairs_dataset, "commented", "starts_with", "--")  # what the preferred answers do
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "dpo", 12)
    ui.pick_field(page, "data.dataset", pairs_dataset)
    ui.pick_field(page, "dpo.loss_type", "dpop")  # seed 004's fix, picked like any other loss
    # the SFT run just made is DPO's default starting point (proposed by the answer to the stage change)
    ui.wait_for(lambda: "-sft-e2e-sft" in parent_shown(page), 30, "the SFT run as the parent")
    page.get_by_role("button", name="Start", exact=True).click()
    ui.wait_for(lambda: "-dpo-e2e-dpo" in ui.status_text(page), 90, "the DPO run to be followed")
    ui.wait_until_done(page, 120)
    ui.wait_for(lambda: all(ui.points(page, t) == 12 for t in REWARD_TRACES), 15, "the rewards/* curves")
    titles = {t["name"]: t["title"] for t in ui.plot_traces(page)}
    assert titles["rewards/chosen"] == titles["rewards/rejected"]  # on one chart
    assert ui.points(page, "dpop/penalty") == 12 and titles["dpop/penalty"] == "terms of the loss"
    # the model's own answers to the sample prompts: step 0 beside the last step
    samples = page.locator("#wb-samples")
    ui.wait_for(lambda: "step 12" in samples.inner_text(), 15, "the sample answers at the last step")
    assert "step 0 (the starting model)" in samples.inner_text() and "tokens" in samples.inner_text()
    assert "Alignment accuracy" in samples.inner_text() and "commented" in samples.inner_text()  # the probe
    ui.screenshot(page, "train-dpo")

    ui.open_tab(page, "Runs")
    page.get_by_role("button", name="Refresh").click()
    table = page.locator(".wb-runs")
    ui.wait_for(lambda: "e2e-dpo" in table.inner_text(), 10, "the runs table")
    assert "completed" in table.inner_text()
    ui.screenshot(page, "runs")

    ui.open_tab(page, "Chat")
    chat = page.locator("#wb-chat")
    columns = page.locator("#wb-chat-columns")
    ui.pick(page, page.locator("#wb-chat-base"), "tiny")  # what the runs trained on (the module made others)
    for run in ("e2e-sft", "e2e-dpo"):
        ui.pick(page, columns, ui.option_containing(page, columns, run))
    # sampled, not greedy: a tiny random model's greedy answer is blank lines, which would show nothing
    page.locator("#wb-chat-sampling").get_by_role("button").first.click()
    ui.fill(page, page.locator("#wb-chat-temperature input[type=number]"), 1)
    ui.fill(page, page.locator("#wb-chat-max-tokens input[type=number]"), 32)  # a random model never ends a turn
    page.locator("#wb-chat-prompt textarea").fill("Table users(id, name, age). Names of users over 30.")
    chat.get_by_role("button", name="Send", exact=True).click()
    answers = chat.locator("textarea[disabled], textarea[readonly]")
    ui.wait_for(lambda: chat.inner_text().count("tokens/s") >= 3 and "✍️" not in chat.inner_text(), 120,
                "three finished answers", shown=chat.inner_text)
    labels = page.locator("#wb-chat").inner_text()
    assert "(base)" in labels and "e2e-sft" in labels and "e2e-dpo" in labels
    texts = [answers.nth(i).input_value() for i in range(answers.count())]
    assert len([t for t in texts if t.strip()]) == 3, texts
    ui.screenshot(page, "chat")

    ui.open_tab(page, "Export")
    export = page.locator("#wb-export")
    run_picker = page.locator("#wb-export-run")
    ui.pick(page, run_picker, ui.option_containing(page, run_picker, "e2e-dpo"))
    export.get_by_role("button", name="Export", exact=True).click()
    exports = app["saves"] / "exports"
    ui.wait_for(lambda: any((p / "model.safetensors").exists() for p in exports.glob("*e2e-dpo*")), 120, "the export")
    ui.screenshot(page, "export")


def test_rlhf_chain_reward_model_then_ppo(page, app, pairs_dataset):
    """RM on the pairs from the newest SFT run, then PPO scored by it: each stage's own charts."""
    parent = sft_run(app)
    ui.open_tab(page, "Train")
    ui.set_short_run(page, "rm", 6)
    ui.pick_field(page, "data.dataset", pairs_dataset)
    ui.wait_for(lambda: parent.name in parent_shown(page), 30, "the newest SFT run as the parent")
    page.get_by_role("button", name="Start", exact=True).click()
    ui.wait_for(lambda: "-rm-e2e-rm" in ui.status_text(page), 90, "the RM run to be followed")
    ui.wait_until_done(page, 120)
    ui.wait_for(lambda: ui.points(page, "accuracy") == 6 and ui.points(page, "margin") == 6, 15,
                "the reward model's accuracy and margin curves")
    ui.screenshot(page, "train-rm")

    ui.set_short_run(page, "ppo", 3)
    ui.pick_field(page, "data.dataset", "sql_sft")  # PPO only needs prompts: any dataset will do
    ui.pick_field(page, "data.eval_dataset", "sql_dpo_eval")
    # the reward-model picker offers the RM run just made, labelled with its eval accuracy
    reward_picker = ui.field(page, "ppo.reward_run")
    ours = ui.option_containing(page, reward_picker, "-rm-e2e-rm")
    assert "eval accuracy" in ours or "completed" in ours, ours
    ui.pick(page, reward_picker, ours)
    ui.set_text(page, "ppo.rollout_batch_size", 4)
    ui.set_text(page, "ppo.max_new_tokens", 8)
    page.get_by_role("button", name="Start", exact=True).click()
    ui.wait_for(lambda: "-ppo-e2e-ppo" in ui.status_text(page), 90, "the PPO run to be followed")
    ui.wait_until_done(page, 180)
    ui.wait_for(lambda: ui.points(page, "objective/scores") == 3 and ui.points(page, "objective/kl") == 3, 15,
                "the PPO score and KL curves")
    assert ui.points(page, "eval_objective/scores") == 2  # held-out answers before and after
    ui.screenshot(page, "train-ppo")

    ui.open_tab(page, "Evaluate")
    run_picker = page.locator("#wb-eval-run")
    ui.pick(page, run_picker, ui.option_containing(page, run_picker, "e2e-ppo"))
    ui.wait_for(lambda: "e2e-rm" in page.locator("#wb-eval-reward input").input_value(), 10,
                "the RM run preselected as the judge")
    for slider, value in (("#wb-eval-prompts", 4), ("#wb-eval-max-new-tokens", 8)):
        ui.fill(page, page.locator(f"{slider} input[type=number]"), value)
    page.locator("#wb-eval-start").click()
    table = page.locator("#wb-eval-table")
    ui.wait_for(lambda: "ppo" in table.inner_text() and "sft" in table.inner_text(), 240, "the evaluation table")
    assert "base" in table.inner_text()
    ui.screenshot(page, "evaluate")
