"""The Evaluate tab: did alignment work? Held-out preference accuracy of a DPO or RM run, and the
answers of several models (base, SFT, DPO, PPO) to held-out prompts, scored by a reward model.

The evaluation runs as `python -m engine.cli eval RUN ...` (engine.inference.evaluate) in a subprocess, so
the page never imports torch; its progress lines go to RUN/eval.log and its results to
RUN/eval.json, which is all this tab reads back. A run evaluated before shows its saved results
as soon as it is picked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from engine.config import EvalConfig, policy_stages, reward_model_stages, stage_of
from engine.data.registry import DatasetError, dataset_folder, read_registry
from engine.inference.evaluate import BASELINE, EVAL_FILE, read_eval, table_headers, table_rows
from engine.paths import REPO_ROOT, runs_root
from engine.runs.folder import latest_run, raw_config
from webui import charts, runinfo
from webui.forms import setting_slider

BASE_VALUE = "base"  # the models picker's value for the bare base model
NO_REWARD = "none"   # the reward picker's value for "no RM scores"
NO_REWARD_CHOICE = ("(none: no RM scores or win rates)", NO_REWARD)
LOG_FILE = "eval.log"
POLL_SECONDS = 0.5
_procs: dict[str, subprocess.Popen] = {}  # run name -> its evaluation in progress


def _stage(name: str) -> str:
    return str(raw_config(runinfo.run_path(name)).get("stage", "?"))


def run_choices() -> list[tuple[str, str]]:
    """Finished runs with weights, marked when they have saved results."""
    return [(label + (" · evaluated" if (runinfo.run_path(name) / EVAL_FILE).exists() else ""), name)
            for label, name in runinfo.finished_runs()]


def model_choices() -> list[tuple[str, str]]:
    """The bare base model and the finished runs that write answers (not reward models)."""
    return [("base model", BASE_VALUE), *runinfo.finished_runs(policy_stages())]


def reward_choices() -> list[tuple[str, str]]:
    return [NO_REWARD_CHOICE] + [(label, path.name) for label, path in runinfo.labelled_runs(reward_model_stages())]


def dataset_choices(name: str | None) -> list[str]:
    """The datasets registered in the run's dataset folder (preference ones give both measurements)."""
    data = (raw_config(runinfo.run_path(name)).get("data") or {}) if name else {}
    try:
        return list(read_registry(dataset_folder(data.get("dataset_dir"))))
    except DatasetError as e:
        gr.Warning(str(e))
        return []


def refresh(run: str | None = None) -> list:
    """[run, models, reward] pickers re-read from disk; the run kept, else the newest one picked."""
    runs = run_choices()
    names = [name for _label, name in runs]
    return [gr.update(choices=runs, value=run if run in names else (names[0] if names else None)),
            gr.update(choices=model_choices()), gr.update(choices=reward_choices())]


def default_dataset(name: str, choices: list[str]) -> str | None:
    """The run's held-out dataset, else a registered one named like a held-out split."""
    data = raw_config(runinfo.run_path(name)).get("data") or {}
    for candidate in (data.get("eval_dataset"), data.get("dataset", "") + "_eval"):
        if candidate in choices:
            return candidate
    return next((c for c in choices if "eval" in c), choices[0] if choices else None)


def default_models(name: str) -> list[str]:
    """What engine.inference.evaluate compares a run with: the base, a DPO/PPO run's parent, the run."""
    cfg = raw_config(runinfo.run_path(name))
    stage = stage_of(cfg.get("stage"))
    if stage is None or not stage.writes_answers:
        return []
    parent = Path(cfg.get("init_from") or "").name if stage.compared_with_parent else ""
    has_parent = parent and (runs_root() / parent / "config.yaml").is_file()
    return [BASE_VALUE, *([parent] if has_parent else []), name]


def default_reward(name: str) -> str:
    """A reward model judges with itself; other runs with the newest reward model, if any."""
    if _stage(name) in reward_model_stages():
        return name
    latest = latest_run(reward_model_stages())
    return latest.name if latest else NO_REWARD


def select_run(name: str | None) -> list:
    """A run picked: its pickers' defaults, and its saved results if it has any:
    [dataset, models, reward, status, summary, table, chart, answers]."""
    try:
        runinfo.run_path(name)
    except FileNotFoundError:
        return [gr.update(choices=[], value=None), gr.update(value=[]), gr.update(value=NO_REWARD), "",
                *show(None)]
    datasets = dataset_choices(name)
    running = name in _procs and _procs[name].poll() is None
    return [gr.update(choices=datasets, value=default_dataset(name, datasets)),
            gr.update(choices=model_choices(), value=default_models(name)),
            gr.update(choices=reward_choices(), value=default_reward(name)),
            f"⏳ an evaluation of **{name}** is running: {last_line(name)}" if running else "",
            *show(read_eval(runinfo.run_path(name)))]


def labels(models: list[str]) -> dict[str, str]:
    """Model value -> its label in the results: base, or the run's stage (sft, sft-2 for a second)."""
    out: dict[str, str] = {}
    for value in models:
        label = BASE_VALUE if value == BASE_VALUE else _stage(value)
        n = 1
        while (label if n == 1 else f"{label}-{n}") in out.values():
            n += 1
        out[value] = label if n == 1 else f"{label}-{n}"
    return out


def command(run: str, dataset: str | None, models: list[str], reward: str | None, prompts: float,
            max_new_tokens: float) -> list[str]:
    """The `workbench eval` command line for the picked settings."""
    compare = ",".join(label if value == BASE_VALUE else f"{label}={value}"
                       for value, label in labels(models).items())
    cmd = [sys.executable, "-m", "engine.cli", "eval", run, "--compare", compare,
           "--reward-run", reward or NO_REWARD, "--prompts", str(int(prompts)),
           "--max-new-tokens", str(int(max_new_tokens))]
    return cmd + (["--dataset", dataset] if dataset else [])


def last_line(name: str) -> str:
    """The evaluation's latest progress line (from RUN/eval.log)."""
    try:
        lines = (runinfo.run_path(name) / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def launch(run: str, dataset: str | None, models: list[str] | None, reward: str | None, prompts: float,
           max_new_tokens: float) -> subprocess.Popen:
    """Start the evaluation process; its output goes to RUN/eval.log."""
    run_dir = runinfo.run_path(run)
    for value in models or []:
        if value != BASE_VALUE:
            runinfo.run_path(value)  # names only: nothing outside saves/runs
    if run in _procs and _procs[run].poll() is None:
        raise RuntimeError(f"{run} is being evaluated already; wait for its results")
    env = {**os.environ, "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONUNBUFFERED": "1"}
    with open(run_dir / LOG_FILE, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command(run, dataset, list(models or []), reward, prompts, max_new_tokens),
                                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env)
    _procs[run] = proc
    return proc


def start(run: str | None, dataset: str | None, models: list[str] | None, reward: str | None, prompts: float,
          max_new_tokens: float) -> Iterator[list]:
    """Run an evaluation and show its results: yields [status, summary, table, chart, answers]."""
    skip = [gr.skip()] * 4
    try:
        proc = launch(run, dataset, models, reward, prompts, max_new_tokens)
    except (FileNotFoundError, RuntimeError, OSError) as e:
        yield [f"❌ {e}", *skip]
        return
    started = time.monotonic()
    while proc.poll() is None:
        yield [f"⏳ Evaluating **{run}** ({time.monotonic() - started:.0f} s): {last_line(run)}", *skip]
        time.sleep(POLL_SECONDS)
    if proc.returncode != 0:
        yield [f"❌ {last_line(run)} (full output: `{runinfo.run_path(run) / LOG_FILE}`)", *skip]
        return
    result = read_eval(runinfo.run_path(run))
    yield [f"✅ Evaluated **{run}** in {time.monotonic() - started:.0f} s.", *show(result)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary_markdown(result: dict) -> str:
    s = result["settings"]
    lines = [f"**{result['run']}** ({result['stage']}) on `{s['dataset']}` · {result['created']} · "
             f"{s['prompts'] or 0} prompts, up to {s['max_new_tokens']} new tokens · "
             f"reward model: {s['reward_run'] or 'none'}"]
    pref = result.get("preference")
    if pref:
        how = f"DPO implicit reward, β={pref['beta']}, reference `{pref['reference']}`" if pref["kind"] == "implicit_reward" \
            else "reward model scores"
        lines.append(f"**Preference accuracy {pref['accuracy']:.0%}** on {pref['pairs']} held-out pairs ({how}) · "
                     f"margin {_fmt(pref['margin'])} · chosen {_fmt(pref['chosen'])} · "
                     f"rejected {_fmt(pref['rejected'])}")
    lines += [f"ℹ️ {note}" for note in result.get("notes", [])]
    return "\n\n".join(lines)


def results_frame(result: dict) -> pd.DataFrame:
    """Rows = models; columns = RM score, win rate vs SFT, probe fractions, length."""
    return pd.DataFrame([[_fmt(c) for c in row] for row in table_rows(result)], columns=table_headers(result))


def results_chart(result: dict) -> go.Figure:
    """Win rate against the SFT model's answers and each probe fraction, per model, as bars."""
    gen = result.get("generation")
    if not gen:
        return charts.empty_figure("", "no generation comparison in these results")
    labels_ = list(gen["models"])
    fig = go.Figure()
    keys = [(f"win rate vs {BASELINE}", "win_rate"), *((p, p) for p in result["settings"]["probes"])]
    for i, (name, key) in enumerate(keys):
        values = [gen["models"][label][key] for label in labels_]
        if any(v is not None for v in values):
            fig.add_trace(go.Bar(x=labels_, y=values, name=name, marker_color=charts.PALETTE[i % len(charts.PALETTE)]))
    fig.update_layout(barmode="group", height=320, template="plotly_white", yaxis={"range": [0, 1]},
                      title={"text": "held-out answers: win rate and task probes", "x": 0.01},
                      margin={"l": 50, "r": 10, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def answers_frame(result: dict) -> pd.DataFrame:
    """Prompt x model: each model's answer, with its RM score when there is one."""
    gen = result.get("generation")
    if not gen:
        return pd.DataFrame(columns=["prompt"])
    rows = []
    for i, prompt in enumerate(gen["prompts"]):
        row = [prompt]
        for m in gen["models"].values():
            score = f"\n\n[RM {m['scores'][i]:.3g}]" if m.get("scores") else ""
            row.append((m["answers"][i] or "(empty)") + score)
        rows.append(row)
    return pd.DataFrame(rows, columns=["prompt", *gen["models"]])


def show(result: dict | None) -> list:
    """[summary, table, chart, answers] for saved results (or their absence)."""
    if result is None:
        return ["No results for this run yet: pick the settings and press **Evaluate**.",
                pd.DataFrame(columns=["model"]), charts.empty_figure("", "no results yet"),
                pd.DataFrame(columns=["prompt"])]
    return [summary_markdown(result), results_frame(result), results_chart(result), answers_frame(result)]


def build_tab() -> dict[str, Any]:
    """The tab's components and events, in the current Blocks/Tab context."""
    gr.Markdown("Did alignment work? **Preference accuracy**: on held-out chosen/rejected pairs, how often a DPO "
                "run's implicit reward (or an RM run's score) prefers the chosen answer. **Generation**: held-out "
                f"prompts answered greedily by each model, scored by a reward model; win rate against the "
                f"{BASELINE} model's answers (ties count half) and task probes. Same as `workbench eval RUN`.")
    with gr.Row():
        run = gr.Dropdown(label="run to evaluate", choices=[], value=None, scale=3, elem_id="wb-eval-run")
        dataset = gr.Dropdown(label="held-out dataset", choices=[], value=None, scale=2, elem_id="wb-eval-dataset")
        refresh_btn = gr.Button("Refresh", scale=0, elem_id="wb-eval-refresh")
    with gr.Row():
        models = gr.Dropdown(label="models to compare (the first sft run is the win-rate baseline)", choices=[],
                             value=[], multiselect=True, scale=3, elem_id="wb-eval-models")
        reward = gr.Dropdown(label="reward model (rm run) that scores the answers", choices=[NO_REWARD_CHOICE],
                             value=NO_REWARD, scale=2, elem_id="wb-eval-reward")
    with gr.Row():
        prompts = setting_slider(EvalConfig, "prompts", 1, label="held-out prompts", elem_id="wb-eval-prompts")
        max_tokens = setting_slider(EvalConfig, "max_new_tokens", 1, label="max new tokens",
                                    elem_id="wb-eval-max-new-tokens")
        start_btn = gr.Button("Evaluate", variant="primary", scale=0, elem_id="wb-eval-start")
    status = gr.Markdown(elem_id="wb-eval-status")
    summary = gr.Markdown(elem_id="wb-eval-summary")
    table = gr.Dataframe(value=pd.DataFrame(columns=["model"]), interactive=False, wrap=True, label="models",
                         elem_id="wb-eval-table")
    chart = gr.Plot(show_label=False, value=charts.empty_figure("", "no results yet"), elem_id="wb-eval-chart")
    answers = gr.Dataframe(value=pd.DataFrame(columns=["prompt"]), interactive=False, wrap=True,
                           label="answers side by side", elem_id="wb-eval-answers")

    results = [summary, table, chart, answers]
    run.change(select_run, run, [dataset, models, reward, status, *results], show_progress="hidden")
    start_btn.click(start, [run, dataset, models, reward, prompts, max_tokens], [status, *results],
                    api_name="evaluate", show_progress="hidden")
    refresh_btn.click(refresh, run, [run, models, reward], api_visibility="private")
    return {"run": run, "dataset": dataset, "models": models, "reward": reward, "status": status,
            "results": results, "on_load": (refresh, [run, models, reward])}
