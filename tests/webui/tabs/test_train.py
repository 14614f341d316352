"""The Train tab's handlers against hand-made run folders (nothing trains here)."""

from __future__ import annotations

import os
import shlex
import shutil
import time

import pytest
import yaml

from engine.config import apply_overrides, dump_yaml, from_dict
from engine.data.registry import read_registry
from engine.runs import queue
from engine.runs.folder import list_runs
from tests.helpers import DATA, GOOD, LOOP, PARAGRAPH, dpo_metrics, make_run, sft_metrics, tiny_config
from webui import charts, form_answers, run_form, runinfo, samples_view
from webui.forms import to_values, values_by_key
from webui.tabs import train


def form(data: dict | None = None) -> tuple[list, list]:
    specs = run_form.form_specs()
    return specs, to_values(specs, data or tiny_config("sft"))


def set_value(specs, values, key, value) -> list:
    values = list(values)
    values[[s.key for s in specs].index(key)] = value
    return values


def charts_of(refreshed: dict) -> list:
    """The chart slots' updates in a refresh answer, in slot order."""
    return [refreshed[slot] for slot in train.CHARTS]


def stage_answer(stage: str, dataset: str = "", eval_dataset: str = "", init_from: str = "", **picks) -> dict:
    """run_form.stage_changed's updates, by key, for a form showing these values (dataset folder: data/)."""
    answer = run_form.stage_changed(stage, str(DATA), dataset, eval_dataset, init_from,
                                    *(picks.get(key.replace(".", "_"), "") for key in run_form.RUN_PICKERS))
    assert answer["asked"] == {"stage": stage, "data.dataset_dir": str(DATA)}  # what the browser checks it against
    return answer["updates"]


def choices(update: dict) -> list:
    """The values a picker offers after a stage answer."""
    return [value for _label, value in update["choices"]]


def sections_shown(updates: dict) -> list[str]:
    return [s for s in run_form.stage_sections() if updates[form_answers.section_key(s)]["visible"]]


def test_dataset_choices_follow_the_stage():
    registry = read_registry(DATA)
    assert run_form.dataset_choices("sft", "data") == list(registry)  # relative to the repository root
    dpo = run_form.dataset_choices("dpo", str(DATA))
    assert dpo and dpo == [n for n, info in registry.items() if info["ranking"]]
    assert run_form.dataset_choices("dpo", "/nonexistent") == []


def test_stage_change_filters_datasets_and_defaults_the_parent(runs_env):
    sft = make_run("sft", "completed", stamp="20250101-000001")
    make_run("sft", "failed", stamp="20250101-000002")
    make_run("dpo", "completed", stamp="20250101-000003")
    rm = make_run("rm", "completed", stamp="20250101-000004")
    rm.adapter_dir.mkdir()
    (rm.adapter_dir / "adapter_config.json").write_text("{}")  # a reward model PPO can load
    dpo = stage_answer("dpo", "sql_sft", "sql_sft_eval")
    dataset, eval_dataset, parent, reward = (dpo[k] for k in ("data.dataset", "data.eval_dataset", "init_from",
                                                             "ppo.reward_run"))
    assert "sql_sft" not in choices(dataset) and dataset["value"] == choices(dataset)[0]
    assert eval_dataset["value"] == "" and eval_dataset["choices"][0] == ["(none)", ""]
    assert parent["value"] == str(sft)  # newest *completed* SFT run
    assert sections_shown(dpo) == ["dpo", "samples"]
    assert reward["value"] == str(rm) and reward["choices"] == [[f"{rm.name} (completed)", str(rm)]]
    # PPO takes prompts from any dataset, starts from the SFT run, and scores with the newest RM run
    ppo = stage_answer("ppo", "sql_sft")
    assert "value" not in ppo["data.dataset"] and "sql_sft" in choices(ppo["data.dataset"])  # kept as it is
    assert ppo["init_from"]["value"] == str(sft) and ppo["ppo.reward_run"]["value"] == str(rm)
    assert sections_shown(ppo) == ["ppo", "samples"]
    assert sections_shown(stage_answer("rm", "sql_dpo")) == ["rm"]  # a reward model writes no answers
    # back to SFT: datasets kept when valid, an explicit parent kept: no value is sent for any of them
    sft_form = stage_answer("sft", "sql_dpo", "sql_dpo_eval", "x")
    assert not any("value" in sft_form[k] for k in ("data.dataset", "data.eval_dataset", "init_from"))
    assert {"sql_dpo", "sql_dpo_eval"} <= set(choices(sft_form["data.dataset"]))


def test_a_stage_answer_replaces_only_values_that_do_not_fit_and_says_which(runs_env):
    """The race's cause: a stage answer that arrives after the user picked another dataset must not put
    a value back. It sends a picker's value only where the value it saw does not fit the stage, and
    names that value (``replaces``), so the browser replaces it only while the picker still shows it
    (webui.stage_answer); a value that fits is never sent, only the new choices."""
    rm = make_run("rm", "completed")
    rm.adapter_dir.mkdir()
    (rm.adapter_dir / "adapter_config.json").write_text("{}")
    for stage, dataset in (("sft", "sql_sft"), ("sft", "penn_pref"), ("dpo", "penn_pref"), ("ppo", "sql_sft")):
        updates = stage_answer(stage, dataset, ppo_reward_run=str(rm))
        assert set(updates["data.dataset"]) == {"choices"}, (stage, dataset)  # it fits: no value to travel
        assert set(updates["ppo.reward_run"]) == {"choices"}  # a picked run is kept
    updates = stage_answer("dpo", "sql_sft", "sql_sft_eval")  # pairs only: both no longer fit
    assert updates["data.dataset"] == {"choices": updates["data.dataset"]["choices"], "value": "sql_dpo",
                                       "replaces": "sql_sft"}
    assert (updates["data.eval_dataset"]["value"], updates["data.eval_dataset"]["replaces"]) == ("", "sql_sft_eval")
    assert updates["ppo.reward_run"] == {"choices": [[f"{rm.name} (completed)", str(rm)]], "value": str(rm),
                                         "replaces": ""}  # none picked: the newest proposed


def test_parent_choices_are_finished_runs(runs_env, dead_pid):
    done = make_run("sft", "completed")
    stopped = make_run("sft", "stopped")
    make_run("sft", "failed")
    make_run("sft", "running", pid=dead_pid)
    values = [value for _label, value in run_form.parent_choices()]
    assert values[0] == "" and sorted(values[1:]) == sorted([str(done), str(stopped)])


def test_preview_shows_yaml_and_a_cli_command_that_round_trips(runs_env):
    parent = make_run("sft", "completed")
    data = tiny_config("dpo", dpo={"beta": 0.25, "loss_type": "ipo"})
    data.update(name="my run: 'quoted'", init_from=str(parent))
    data["data"]["eval_dataset"] = "sql_dpo_eval"
    data["training"]["learning_rate"] = 1e-5
    specs, values = form(data)
    shown = run_form.preview(specs, *values)
    command = shown["command"]
    assert shown["error"] == "" and shown["yaml"] == dump_yaml(from_dict(data))
    saved_line, rest = command.split("\n\n")
    assert saved_line.endswith(f"workbench train {run_form.saved_config_path(from_dict(data))}")
    args = shlex.split(rest.split("\n", 1)[1].replace("\\\n", " "))
    assert args[:2] == ["workbench", "train"]
    sets = args[3::2]
    assert all(flag == "--set" for flag in args[2::2])
    assert "lora.rank=8" not in sets  # only values off the defaults
    assert from_dict(apply_overrides({}, sets)) == from_dict(data)


def test_preview_of_a_distributed_run_shows_the_launch_command(runs_env, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # this machine as CI has it: no GPU
    specs, values = form(tiny_config("sft", distributed={"backend": "ddp", "num_processes": 2}))
    shown = run_form.preview(specs, *values)
    command = shown["command"]
    assert shown["error"] == ""
    assert "distributed.backend=ddp" in command and "distributed.num_processes=2" in command
    folder = run_form.shown_path(runs_env / "runs" / "<run folder>")
    assert command.endswith(f"# either starts 2 processes through accelerate; this is the command, with accelerate.yaml "
                            f"written into the new run folder:\naccelerate launch --config_file "
                            f"'{folder}/accelerate.yaml' -m engine.train '{folder}'")
    # fsdp shards across GPUs: refused here before any folder is made, naming the setting
    fsdp = set_value(specs, values, "distributed.backend", "fsdp")
    error = run_form.preview(specs, *set_value(specs, fsdp, "samples.count", 0))["error"]
    assert error.startswith("❌ distributed.backend: fsdp shards the model across GPUs and this machine has none")


def test_a_distributed_runs_status_says_how_it_was_launched(runs_env):
    run = make_run("sft", "completed")
    run.config_file.write_text(dump_yaml(from_dict(tiny_config("sft", distributed={"backend": "ddp", "num_processes": 2}))))
    (run.path / "accelerate.yaml").write_text("distributed_type: MULTI_GPU\n")
    text = train.status_markdown(run.name)
    assert f"launched as `accelerate launch --config_file {run_form.shown_path(run.path)}/accelerate.yaml" in text


def test_preview_of_a_bad_value_names_the_key(runs_env):
    specs, values = form()
    shown = run_form.preview(specs, *set_value(specs, values, "training.learning_rate", 3.0))
    assert "yaml" not in shown and "command" not in shown  # the previews keep their last text
    assert "training.learning_rate" in shown["error"] and "maximum" in shown["error"]
    error = run_form.preview(specs, *set_value(specs, values, "data.eval_dataset", "missing"))["error"]
    assert error.startswith("❌ data.eval_dataset: 'missing' is not a registered dataset")


def test_start_refuses_bad_config_without_making_a_run(runs_env):
    specs, values = form()
    with pytest.warns(UserWarning, match="lora.rank"):
        out = train.start(specs, *set_value(specs, values, "lora.rank", 0))
    assert "monitor" not in out and "lora.rank" in out["message"] and "minimum" in out["message"]
    with pytest.warns(UserWarning, match="data.dataset"):
        message = train.start(specs, *set_value(specs, values, "data.dataset", "nope"))["message"]
    assert "data.dataset: 'nope'" in message
    dpo_specs, dpo_values = form(tiny_config("dpo"))
    with pytest.warns(UserWarning, match=r"data.dataset: 'sql_sft' cannot train dpo: .* chosen/rejected pairs"):
        train.start(dpo_specs, *set_value(dpo_specs, dpo_values, "data.dataset", "sql_sft"))
    with pytest.warns(UserWarning, match="init_from"):
        message = train.start(dpo_specs, *set_value(dpo_specs, dpo_values, "init_from", "latest:sft"))["message"]
    assert "init_from: latest:sft: no completed sft run" in message
    assert list_runs() == []


def test_preflight_records_the_parent_folder(runs_env):
    parent = make_run("sft", "completed")
    cfg = run_form.preflight(from_dict({**tiny_config("dpo"), "init_from": "latest:sft"}))
    assert cfg.init_from == str(parent)


def test_refresh_reports_status_log_and_charts(runs_env):
    run = make_run("dpo", "running", metrics=dpo_metrics(), log="\n".join(f"line {i}" for i in range(100)),
                   pid=os.getpid(), step=2, max_steps=4, elapsed=10.0, started=time.time() - 12)
    out = train.refresh(run.name, {})
    status, plots = out["status"], charts_of(out)
    assert f"**{run.name}**" in status and "state: **running**" in status and "step 2/4" in status
    assert "ETA 0:10" in status  # 10 s for 2 steps, 2 to go
    assert out["log"].splitlines() == [f"line {i}" for i in range(60, 100)]
    assert len(plots) == charts.CHART_SLOTS
    shown = [p["value"].layout.title.text for p in plots if p["visible"]]
    assert shown == ["loss", "learning rate", "rewards (chosen vs rejected)", "rewards/accuracies",
                     "rewards/margins", "log-probabilities (chosen vs rejected)"]
    assert [t.name for t in plots[0]["value"].data] == ["loss", "eval_loss"]
    # nothing changed on disk: the next tick resends neither the log nor the charts
    again = train.refresh(run.name, out["seen"])
    assert "log" not in again and not set(train.CHARTS) & set(again)
    assert {k: again["seen"][k] for k in ("log", "metrics", "samples")} == {k: out["seen"][k] for k in ("log", "metrics", "samples")}
    assert out["seen"]["timer"] == [1.0, True] and again["timer"] == {"__type__": "update", "value": 2.0, "active": True}
    assert train.refresh(run.name, again["seen"])["seen"]["timer"] == [4.0, True]  # still nothing new: slower still
    # a new metrics line redraws the charts
    run.metrics_file.open("a").write('{"step": 3, "loss": 0.1}\n')
    plots3 = charts_of(train.refresh(run.name, out["seen"]))
    assert list(plots3[0]["value"].data[0].x) == [1, 2, 3]


def test_the_refresh_slows_for_a_finished_run_and_resends_only_what_changed(runs_env):
    done = make_run("sft", "completed", metrics=sft_metrics())
    first = train.refresh(done.name, {})
    assert first["timer"] == {"__type__": "update", "value": 8.0, "active": True} and first["status"]  # a slow tick
    again = train.refresh(done.name, first["seen"])
    assert set(again) == {"resources", "seen"}  # the same status line and tick are not sent again
    live = make_run("dpo", "running", metrics=dpo_metrics(), pid=os.getpid())
    watched = train.refresh(live.name, {})
    assert watched["timer"] == {"__type__": "update", "value": 1.0, "active": True}  # a live run: every second


def test_refresh_hides_preference_charts_for_sft(runs_env):
    run = make_run("sft", "completed", metrics=sft_metrics())
    out = train.refresh(run.name, {})
    assert "state: **completed**" in out["status"] and "ETA" not in out["status"]
    assert [p["visible"] for p in charts_of(out)] == [True, True] + [False] * (charts.CHART_SLOTS - 2)


def test_refresh_without_a_run_or_with_a_missing_one(runs_env):
    out = train.refresh(None, {})
    assert "No run yet" in out["status"] and out["log"] == ""
    shown = [p for p in charts_of(out) if p["visible"]]
    assert len(shown) == 2 and all(charts.WAITING in p["value"].layout.annotations[0].text for p in shown)
    assert "not found" in train.refresh("20990101-000000-sft-gone", {})["status"]
    status = train.refresh("../../etc", {})["status"]
    assert "not found" in status or "no run" in status


def test_a_running_run_with_a_dead_engine_shows_crashed(runs_env, dead_pid):
    run = make_run("sft", "running", metrics=sft_metrics(), pid=dead_pid, step=1)
    status = train.refresh(run.name, {})["status"]
    assert "state: **crashed**" in status and "the process exited without writing a final status" in status
    assert run.status().state == "crashed"  # written down by the first to notice, as the queue and the CLI do


def test_stop_of_a_run_that_is_not_running(runs_env):
    run = make_run("sft", "completed")
    assert "not running (state: completed)" in train.stop(run.name)
    assert "no run selected" in train.stop(None)


def test_load_from_run_and_from_file(runs_env, tmp_path):
    data = tiny_config("dpo", dpo={"beta": 0.5})
    run = make_run("dpo", "completed")
    (run.config_file).write_text(yaml.safe_dump(data))
    specs = run_form.form_specs()
    assert run_form.load_from_run(specs, run.name) == values_by_key(specs, data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert run_form.load_from_file(specs, str(path)) == values_by_key(specs, data)
    path.write_text("stage: dpo\ndpo: {beta: -1}\n")
    with pytest.warns(UserWarning, match="dpo.beta"):
        assert run_form.load_from_file(specs, str(path)) == {}  # no field changes
    path.write_text("- not a mapping\n")
    with pytest.warns(UserWarning, match="mapping"):
        assert run_form.load_from_file(specs, str(path)) == {}


def test_page_load_reattaches_the_live_run(runs_env, dead_pid):
    from webui.tabs.train import page_loaded as on_load

    live = make_run("sft", "running", pid=os.getpid(), stamp="20250101-000001")
    make_run("sft", "completed", stamp="20250101-000002")
    make_run("sft", "running", pid=dead_pid, stamp="20250101-000003")
    assert runinfo.attach_candidate() == live.name
    specs, values = form()
    monitor = on_load(specs, *values)["monitor"]
    assert monitor["value"] == live.name and len(monitor["choices"]) == 3
    live.update_status(state="completed", pid=None)
    assert runinfo.attach_candidate() == "20250101-000003-sft-test"  # no live run: the newest


def test_a_reload_during_a_dpo_run_fills_the_form_with_the_runs_own_settings(runs_env):
    parent = make_run("sft", "completed", stamp="20250101-000001")
    live = make_run("dpo", "running", pid=os.getpid(), stamp="20250101-000002")  # this process plays the engine
    data = tiny_config("dpo", data={"dataset": "penn_pref"}, dpo={"beta": 0.2})
    live.config_file.write_text(dump_yaml(from_dict({**data, "init_from": str(parent)})))
    specs, defaults = form(tiny_config("sft"))  # what a fresh page shows: an SFT form
    out = train.page_loaded(specs, *defaults)
    settings, stage = out["form_answer"]  # applied in this order in the browser (webui.form_answers)
    filled = settings["updates"]  # each value replaces what the fresh page showed, if it still shows it
    assert (filled["stage"], filled["data.dataset"], filled["dpo.beta"]) == (
        {"value": "dpo", "replaces": "sft"}, {"value": "penn_pref", "replaces": "sql_sft"},
        {"value": 0.2, "replaces": 0.1})  # (the SFT form shows DPO's options at their defaults)
    assert filled["init_from"]["value"] == str(parent)
    assert set(filled) == {"stage", "data.dataset", "dpo.beta", "init_from"}  # the rest shows the run's already
    pickers = stage["updates"]  # the run's own stage answered: the DPO pickers and sections
    assert stage["asked"]["stage"] == "dpo" and "value" not in pickers["data.dataset"]
    assert "penn_pref" in choices(pickers["data.dataset"]) and sections_shown(pickers) == ["dpo", "samples"]
    assert out["monitor"]["value"] == live.name
    assert out["message"].startswith(f"ℹ️ The form shows the settings of **{live.name}**, the run being followed")
    # a finished run is followed too, and its settings stay in the form: what the user was working on
    live.update_status(state="completed", pid=None)
    settings, stage = train.page_loaded(specs, *defaults)["form_answer"]
    assert settings["updates"]["data.dataset"] == {"value": "penn_pref", "replaces": "sql_sft"}
    # with no run at all, the form keeps what it shows (a new run's defaults)
    shutil.rmtree(live.path)
    shutil.rmtree(parent.path)
    out = train.page_loaded(specs, *defaults)
    assert "message" not in out and "value" not in out["model.name_or_path"]
    [stage] = out["form_answer"]  # no settings to fill in: only the answer to the form's own stage
    dataset = stage["updates"]["data.dataset"]
    assert "value" not in dataset and "sql_sft" in choices(dataset)  # the form's own sql_sft stays


def test_the_resource_line_names_the_followed_runs_engine(runs_env):
    run = make_run("dpo", "running", metrics=dpo_metrics(), pid=os.getpid())  # this process plays the engine
    resources = train.refresh(run.name, {})["resources"]
    assert f"engine `{run.name}`: " in resources and "no engine running" not in resources


def test_start_queues_behind_a_running_run_and_stop_cancels_it(runs_env):
    busy = make_run("sft", "running", pid=os.getpid(), name="busy")  # alive: this test process
    specs, values = form()
    out = train.start(specs, *values)
    message, queued = out["message"], runinfo.run_path(out["monitor"]["value"])
    assert message.startswith(f"Queued **{queued.name}** (position 1): it starts when {busy.name} ends")
    assert queued.status().state == "queued" and queued.status().pid is None
    assert queue.start_next() is None  # still busy
    assert "Cancelled" in train.stop(queued.name)
    assert queued.status().state == "cancelled"


def test_save_config_writes_the_preview_and_loads_back(runs_env):
    data = tiny_config("dpo", dpo={"beta": 0.3})
    data["name"] = "my dpo"
    specs, values = form(data)
    saved = run_form.save_config(specs, *values)
    path = runs_env / "configs" / "dpo-my-dpo.yaml"
    assert f"workbench train {path}" in saved["message"] and saved["saved_configs"]["choices"] == ["dpo-my-dpo.yaml"]
    assert path.read_text() == run_form.preview(specs, *values)["yaml"]
    assert run_form.load_from_saved(specs, "dpo-my-dpo.yaml") == values_by_key(specs, data)
    message = run_form.save_config(specs, *set_value(specs, values, "dpo.beta", -1))["message"]
    assert message.startswith("❌ dpo.beta: -1")


def test_status_shows_health_warnings(runs_env):
    falling = {"code": "chosen_reward_falling", "message": "rewards/chosen fell from 0.01 to -0.4 over steps 1-20", "step": 12}
    run = make_run("dpo", "running", metrics=dpo_metrics(), pid=os.getpid(), warnings=[falling])
    status = train.refresh(run.name, {})["status"]
    assert "⚠️ **step 12**: rewards/chosen fell from 0.01 to -0.4 over steps 1-20" in status
    # a NaN stop: the error already holds the warning's message, which is shown once
    nan = {"code": "non_finite", "message": "grad_norm=nan at step 3: training diverged.", "step": 3}
    failed = make_run("sft", "failed", name="nan", warnings=[nan], error=nan["message"] + " Training stopped.")
    status = train.refresh(failed.name, {})["status"]
    assert "❌ grad_norm=nan at step 3" in status and status.count("grad_norm=nan") == 1


def test_refresh_shows_the_sample_answers_and_the_slider_looks_back(runs_env):
    run = make_run("dpo", "running", metrics=dpo_metrics(), pid=os.getpid())
    answers = {0: PARAGRAPH, 4: GOOD, 8: LOOP}
    run.append_samples([{"step": s, "prompt": "How do I bake a cake?", "answer": a, "tokens": 9, "ended": s != 8}
                        for s, a in answers.items()])
    out = train.refresh(run.name, {})
    step, samples = out["sample_step"], out["samples"]
    assert step["maximum"] == step["value"] == 8
    assert "step 0 (the starting model)" in samples and "step 8" in samples and ">loops<" in samples
    assert "cut at the limit" in samples and "Preheat the oven" in samples
    again = train.refresh(run.name, out["seen"])
    assert "sample_step" not in again and "samples" not in again  # unchanged file: nothing resent
    back = samples_view.show_run(run.name, 6)  # the slider between two sample steps: the one before
    assert "step 4" in back and "1. Preheat" in back and ">loops<" not in back


def fake_checkpoint(run, step: int) -> None:
    """A checkpoint folder with the files engine.runs.checkpoints requires (their contents unread here)."""
    folder = run.checkpoints_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (folder / name).write_bytes(b"x")
    (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')


def test_resume_queues_a_crashed_run_from_its_last_checkpoint(runs_env, dead_pid, monkeypatch):
    started = []
    monkeypatch.setattr(queue, "start_next", lambda: started.append(True))
    run = make_run(state="running", pid=dead_pid, step=7, max_steps=60)
    fake_checkpoint(run, 5)
    assert "💾 **Resume** continues it from `checkpoints/checkpoint-5` (step 5)" in train.status_markdown(run.name)
    out = train.resume(run.name)
    assert out["monitor"]["value"] == run.name and started == [True]
    assert "Resuming" in out["message"] and "checkpoints/checkpoint-5" in out["message"]
    status = run.status()
    assert status.waiting and status.resume_from == "checkpoints/checkpoint-5" and status.step == 5


def test_resume_says_why_not(runs_env, monkeypatch):
    monkeypatch.setattr(queue, "start_next", lambda: None)
    done = make_run(state="completed")
    message = train.resume(done.name)["message"]
    assert message.startswith("❌ Not resumed:") and "completed" in message
    failed = make_run(state="failed", error="boom")
    assert "No complete checkpoint" in train.status_markdown(failed.name)
    assert "saved no complete checkpoint" in train.resume(failed.name)["message"]
    assert train.resume(None)["message"].startswith("❌ Not resumed:") and "monitor" not in train.resume(None)
    assert failed.status().state == "failed"


def test_a_full_disk_at_start_says_what_to_do_and_leaves_no_run(runs_env, monkeypatch):
    import engine.runs.folder

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.runs.folder, "atomic_write", full_disk)
    specs, values = form()
    with pytest.warns(UserWarning, match="No space left on device"):
        out = train.start(specs, *values)
    message = out["message"]
    assert "monitor" not in out and message.startswith("❌ Not started:")
    assert "could not create the run folder" in message
    assert "free disk space or set another saves folder (WORKBENCH_SAVES)" in message
    assert list_runs() == [] and list((runs_env / "runs").iterdir()) == []
