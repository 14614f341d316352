"""The Evaluate tab: did alignment work? Held-out preference accuracy of a run trained on pairs, and
the answers of several models (base, SFT, DPO, PPO) to held-out prompts, scored by a reward model.

An evaluation is a job of the run (engine.runs.jobs): Evaluate writes its folder and starts
`python -m engine.job JOB_DIR`, the same as `workbench eval`; the tab follows the job's status and
log and shows its result. A reload or a server restart finds a running evaluation again, and a run
evaluated before shows its newest results as soon as it is picked. The widgets are generated from
engine.config.EvalConfig.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import ConfigError, EvalConfig, policy_stages, reward_model_stages, stage_of
from engine.config.fields import build as build_settings
from engine.data.probes import KINDS
from engine.data.registry import DatasetError, dataset_folder, read_registry
from engine.inference.evaluate import BASELINE, NONE, plan, read_eval
from engine.runs.folder import latest_run
from engine.runs.jobs import JobFolder, create_job, start_job
from engine.runs.status import State
from webui import runinfo
from webui.eval_results import show
from webui.forms import refreshed, setting
from webui.named import by_name
from webui.tabs import Event, Page, Tab

BASE_VALUE = "base"  # the models picker's value for the bare base model
NO_REWARD_CHOICE = ("(none: no RM scores or win rates)", NONE)
KIND = "eval"  # the job kind
POLL_SECONDS = 1.0
EVAL_PROBE_HELP = next(f.metadata["help"] for f in dataclasses.fields(EvalConfig) if f.name == "probe")


def run_choices() -> list[tuple[str, str]]:
    """Finished runs with weights, marked when they have results."""
    return [(label + (" · evaluated" if read_eval(runinfo.run_path(name)) else ""), name)
            for label, name in runinfo.finished_runs()]


def model_choices() -> list[tuple[str, str]]:
    """The bare base model and the finished runs that write answers (not reward models)."""
    return [("base model", BASE_VALUE), *runinfo.finished_runs(policy_stages())]


def reward_choices() -> list[tuple[str, str]]:
    return [NO_REWARD_CHOICE] + [(label, run.name) for label, run in runinfo.labelled_runs(reward_model_stages())]


@dataclass(frozen=True)
class HeldOut:
    """The held-out dataset picker for one run: what it offers, what it proposes (None: nothing
    fits) and a line saying why."""

    choices: list[tuple[str, str]]
    value: str | None
    hint: str


def held_out_name(training_set: str) -> str:
    """The held-out set a training set's name implies: X_train -> X_eval, X -> X_eval."""
    return training_set.removesuffix("_train") + "_eval"


def held_out_sets(registry: dict[str, dict], stage: str | None, training_set: str | None,
                  eval_dataset: str | None) -> HeldOut:
    """What to evaluate a run on. A run trained on pairs (DPO, RM) is measured on pairs, so only
    preference (ranking) datasets are offered; its own training set is not held out, so it comes last
    and says so. Proposed: the run's data.eval_dataset, else the held-out twin of its training set
    (held_out_name), else nothing: a set of another task would measure the wrong thing."""
    spec = stage_of(stage)
    pairs = spec is not None and spec.needs_pairs
    usable = [name for name, info in registry.items() if info.get("ranking") or not pairs]
    held = [name for name in usable if name != training_set]
    choices = [(name, name) for name in held]
    if training_set in usable:
        choices.append((f"{training_set} (the run's training set: not held out)", training_set))
    if eval_dataset in held:
        return HeldOut(choices, eval_dataset, f"{eval_dataset}: the run's own held-out set (data.eval_dataset).")
    twin = held_out_name(training_set) if training_set else None
    if twin in held:
        return HeldOut(choices, twin, f"{twin}: the held-out set of {training_set}, the run's training set.")
    kind = "preference (ranking) dataset" if pairs else "dataset"
    looked = f" (no {twin} is registered)" if twin else ""
    return HeldOut(choices, None, f"No held-out set of {training_set or 'its training set'} found{looked}: pick a "
                                  f"{kind} of the same task, or register one on the Datasets tab.")


def run_held_out(name: str) -> HeldOut:
    """held_out_sets for a run, from its config and the registry of its dataset folder."""
    run = runinfo.run_path(name)
    data = run.raw_config().get("data") or {}
    try:
        registry = read_registry(dataset_folder(data.get("dataset_dir")))
    except DatasetError as e:
        gr.Warning(str(e))
        registry = {}
    return held_out_sets(registry, run.stage, data.get("dataset"), data.get("eval_dataset"))


def refresh(run: str | None = None) -> dict[str, Any]:
    """The "run", "models" and "reward" pickers re-read from disk; the run kept, else one being
    evaluated, else the newest."""
    runs = run_choices()
    names = [name for _label, name in runs]
    return {"run": refreshed(runs, run, runinfo.pick_run(names, run, KIND)),
            "models": gr.update(choices=model_choices()), "reward": gr.update(choices=reward_choices())}


def default_models(name: str) -> list[str]:
    """What engine.inference.evaluate compares a run with: the base, a DPO/PPO run's parent, the run."""
    run = runinfo.run_path(name)
    stage = stage_of(run.stage)
    if stage is None or not stage.writes_answers:
        return []
    parent = Path(run.raw_config().get("init_from") or "").name if stage.compared_with_parent else ""
    try:
        return [BASE_VALUE, *([runinfo.run_path(parent).name] if parent else []), name]
    except FileNotFoundError:  # the parent was deleted
        return [BASE_VALUE, name]


def default_reward(name: str) -> str:
    """A reward model judges with itself; other runs with the newest reward model, if any."""
    if runinfo.run_path(name).stage in reward_model_stages():
        return name
    latest = latest_run(reward_model_stages())
    return latest.name if latest else NONE


def labels(models: list[str]) -> dict[str, str]:
    """Model value -> its label in the results: base, or the run's stage (sft, sft-2 for a second)."""
    out: dict[str, str] = {}
    for value in models:
        label = BASE_VALUE if value == BASE_VALUE else (runinfo.run_path(value).stage or "run")
        n = 1
        while (label if n == 1 else f"{label}-{n}") in out.values():
            n += 1
        out[value] = label if n == 1 else f"{label}-{n}"
    return out


def declared_probes(name: str | None, dataset: str | None) -> list[str]:
    """The probes the held-out dataset declares (engine.data.probes) in the run's dataset folder."""
    if not name or not dataset:
        return []
    data = runinfo.run_path(name).raw_config().get("data") or {}
    try:
        return list(read_registry(dataset_folder(data.get("dataset_dir"))).get(dataset, {}).get("probes") or {})
    except DatasetError:
        return []


def probe_choices(name: str | None, dataset: str | None) -> dict:
    """The probes picker for a held-out dataset: its declared probes, all picked."""
    found = declared_probes(name, dataset)
    return gr.update(choices=found, value=found)


def settings(dataset: str | None, models: list[str] | None, reward: str | None, prompts, max_new_tokens,
             pairs, probes: list[str] | None, probe_name: str = "", probe_kind: str = "",
             probe_value: str = "") -> EvalConfig:
    """The widgets' values as an EvalConfig (checked: a bad value names its field). The probes
    picked are sent by name, even all of them: what was counted is then in the results' settings."""
    compare = ",".join(label if value == BASE_VALUE else f"{label}={runinfo.run_path(value).path}"
                       for value, label in labels(list(models or [])).items()) or NONE
    extra = " ".join(p.strip() for p in (probe_name or "", probe_kind or "", probe_value or "")) \
        if (probe_name or "").strip() and (probe_value or "").strip() else None
    if reward and reward != NONE:  # a run name from the picker; a path would reach outside the runs folder
        runinfo.run_path(reward)
    values = {"dataset": dataset or None, "compare": compare, "reward_run": reward or NONE, "prompts": prompts,
              "max_new_tokens": max_new_tokens, "pairs": pairs, "probes": ",".join(probes or []), "probe": extra}
    return build_settings(EvalConfig, values, "eval", key=lambda _section, name: name)


def job_status(job: JobFolder | None) -> str:
    """One line about the run's newest evaluation: running (with its latest progress line), or how it ended."""
    if job is None:
        return ""
    status = job.status()
    if status.engine_alive:
        return f"⏳ evaluating **{job.run.name}** ({status.duration() or 0:.0f} s): {job.last_line()}"
    if status.shown in (State.FAILED, State.CRASHED, State.STOPPED):
        return f"❌ {status.error or status.shown} (full output: `{job.log_file}`)"
    return f"✅ evaluated **{job.run.name}** in {status.duration() or 0:.0f} s."


def start(run: str | None, *values) -> dict[str, Any]:
    """Check the settings, then start the evaluation job: {"status", "timer"}."""
    try:
        folder = runinfo.run_path(run)
        if runinfo.job_running(runinfo.latest_job(run, KIND)):
            raise ConfigError(f"{run} is being evaluated already; wait for its results")
        chosen = settings(*values)
        plan(folder, chosen)  # every setting checked before a job exists; errors name the flag
    except (ConfigError, FileNotFoundError) as e:
        return {"status": f"❌ {e}", "timer": gr.Timer(active=False)}
    job = create_job(folder, KIND, dataclasses.asdict(chosen))
    proc = start_job(job)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return {"status": job_status(job), "timer": gr.Timer(active=True)}


def poll(name: str | None) -> dict[str, Any]:
    """The timer's tick while an evaluation runs: {"status", "timer"}, and the results (eval_results.show's
    "summary", "table", "chart", "answers") once the job has ended, with the timer's end."""
    job = runinfo.latest_job(name, KIND)
    if runinfo.job_running(job):
        return {"status": job_status(job), "timer": gr.Timer(active=True)}
    return {"status": job_status(job), **show(read_eval(runinfo.run_path(name)) if job else None),
            "timer": gr.Timer(active=False)}


def select_run(name: str | None) -> dict[str, Any]:
    """A run picked: its pickers' defaults ("dataset", "models", "reward"), its newest results
    (eval_results.show's), and its running evaluation followed ("status", "timer")."""
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError:
        return {"dataset": gr.update(choices=[], value=None), "models": gr.update(value=[]),
                "reward": gr.update(value=NONE), "status": "", **show(None), "timer": gr.Timer(active=False)}
    held_out = run_held_out(name)
    job = runinfo.latest_job(name, KIND)
    return {"dataset": gr.update(choices=held_out.choices, value=held_out.value, info=held_out.hint),
            "models": gr.update(choices=model_choices(), value=default_models(name)),
            "reward": gr.update(choices=reward_choices(), value=default_reward(name)),
            "status": job_status(job), **show(read_eval(run)), "timer": gr.Timer(active=runinfo.job_running(job))}


def build(page: Page) -> Tab:
    gr.Markdown("Did alignment work? **Preference accuracy**: on held-out chosen/rejected pairs, how often a DPO "
                "run's implicit reward (or a reward model's score) prefers the chosen answer. **Generation**: "
                "held-out prompts answered greedily by each model, scored by a reward model; win rate against the "
                f"{BASELINE} model's answers (ties count half) and task probes. Same as `workbench eval RUN`.")
    with gr.Row():
        run = gr.Dropdown(label="run to evaluate", choices=[], value=None, scale=3, elem_id="wb-eval-run")
        dataset = setting(EvalConfig, "dataset", choices=[], label="held-out dataset", scale=2,
                          elem_id="wb-eval-dataset")
        refresh_btn = gr.Button("Refresh", scale=0, elem_id="wb-eval-refresh")
    with gr.Row():
        models = gr.Dropdown(label=f"models to compare (the first {BASELINE} run is the win-rate baseline)",
                             choices=[], value=[], multiselect=True, scale=3, elem_id="wb-eval-models")
        reward = setting(EvalConfig, "reward_run", choices=[NO_REWARD_CHOICE], value=NONE, scale=2,
                         label="reward model that scores the answers", elem_id="wb-eval-reward")
    with gr.Row():
        prompts = setting(EvalConfig, "prompts", step=1, label="held-out prompts", elem_id="wb-eval-prompts")
        max_tokens = setting(EvalConfig, "max_new_tokens", step=1, label="max new tokens",
                             elem_id="wb-eval-max-new-tokens")
        pairs = setting(EvalConfig, "pairs", label="held-out pairs")
        probes = setting(EvalConfig, "probes", choices=[], value=[], multiselect=True,
                         label="task probes the held-out dataset declares", elem_id="wb-eval-probes")
        start_btn = gr.Button("Evaluate", variant="primary", scale=0, elem_id="wb-eval-start")
    with gr.Accordion("One more task probe, for this evaluation only", open=False, elem_id="wb-eval-probe"):
        gr.Markdown(EVAL_PROBE_HELP)
        with gr.Row():
            probe_name = gr.Textbox(label="probe name", max_lines=1, elem_id="wb-eval-probe-name")
            probe_kind = gr.Dropdown(label="kind", choices=list(KINDS), value="starts_with",
                                     elem_id="wb-eval-probe-kind")
            probe_value = gr.Textbox(label="value", max_lines=1, elem_id="wb-eval-probe-value")
    status = gr.Markdown(elem_id="wb-eval-status")
    summary = gr.Markdown(elem_id="wb-eval-summary")
    table = gr.Dataframe(interactive=False, wrap=True, label="models", elem_id="wb-eval-table")
    chart = gr.Plot(show_label=False, elem_id="wb-eval-chart")
    answers = gr.Dataframe(interactive=False, wrap=True, label="answers side by side", elem_id="wb-eval-answers")
    timer = gr.Timer(POLL_SECONDS, active=False)

    results = {"summary": summary, "table": table, "chart": chart, "answers": answers}
    followed = {"status": status, **results, "timer": timer}
    pickers = {"run": run, "models": models, "reward": reward}
    defaults = {"dataset": dataset, "models": models, "reward": reward}
    run.change(inputs=run, **by_name(select_run, {**defaults, **followed}), show_progress="hidden")
    dataset.change(probe_choices, [run, dataset], probes, show_progress="hidden")
    start_btn.click(inputs=[run, dataset, models, reward, prompts, max_tokens, pairs, probes, probe_name, probe_kind,
                            probe_value], **by_name(start, {"status": status, "timer": timer}), api_name="evaluate",
                    show_progress="hidden")
    timer.tick(inputs=run, **by_name(poll, followed), show_progress="hidden")
    refresh_btn.click(inputs=run, **by_name(refresh, pickers), api_visibility="private")
    return Tab({"run": run, "dataset": dataset, "models": models, "reward": reward, "status": status,
                "results": results, "timer": timer},
               on_load=[Event(**by_name(refresh, pickers))], on_select=Event(inputs=[run], **by_name(refresh, pickers)))
