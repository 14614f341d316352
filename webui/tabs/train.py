"""The Train tab: the run form (webui.run_form), Start / Stop / Save config, and the followed run's
status, resources, log tail and live charts.

It never trains: Start writes a run folder (engine.runs.queue.enqueue) and the queue launches
``python -m engine.train RUN_DIR``; everything shown afterwards is re-read from that folder, so the
page can be reloaded or the server restarted at any time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config import STAGES, ConfigError
from engine.runs import checkpoints, launch, process, queue
from engine.runs.folder import RunFolder
from engine.runs.process import stop as stop_process
from engine.runs.status import State
from webui import charts, resources, run_form, runinfo, samples_view
from webui.forms import FieldSpec, build_section, make_component, validate
from webui.log_box import log_box
from webui.tabs import Event, Page, Tab

RUN_BAR = ("stage", "name", "init_from", "data.dataset", "data.eval_dataset")
# run_form.stage_changed's inputs, and the fields among its outputs (the section boxes follow them)
STAGE_INPUTS = ("stage", "data.dataset_dir", "data.dataset", "data.eval_dataset", "init_from", *run_form.RUN_PICKERS)
STAGE_PICKERS = ("data.dataset", "data.eval_dataset", "init_from", *run_form.RUN_PICKERS)
SECTION_TITLES = {"lora": "LoRA", "data": "Data", "training": "Training",
                  "samples": "Samples: the model's answers to a few prompts during training, and the alarms on them",
                  "distributed": "Distributed: one run on several processes, GPUs or machines (accelerate)",
                  **{name: f"{stage.title}: options" for name, stage in STAGES.items()}}
LOG_TAIL_LINES = 40
TICK_SECONDS = 1.0


def start(specs: list[FieldSpec], *values: Any) -> tuple[Any, str]:
    """Validate, write the run folder, queue it (it starts at once when nothing else trains).
    Returns (followed-run dropdown update, message)."""
    try:
        cfg = run_form.preflight(validate(specs, list(values)))
    except ConfigError as e:
        gr.Warning(str(e))
        return gr.skip(), f"❌ {e}"
    try:
        run = queue.enqueue(cfg)
    except OSError as e:  # a full disk: create_run removed the half-made folder; say what to do
        gr.Warning(str(e))
        return gr.skip(), f"❌ Not started: {e}"
    started = queue.start_next()
    waiting = queue.waiting_runs()
    # the queue's worker may have started it (and a tiny run ended) between the two calls
    if started == run or run not in waiting:
        message = f"Started **{run.name}**."
    else:
        active = queue.active_run()
        message = (f"Queued **{run.name}** (position {waiting.index(run) + 1}): it starts when "
                   f"{active.name if active else 'the current run'} ends, so two trainings never share the CPU/GPU.")
    return gr.update(choices=runinfo.run_names(), value=run.name), message


def stop(name: str | None) -> str:
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError as e:
        return f"❌ {e}"
    if queue.cancel(run):
        return f"Cancelled **{name}**: it was waiting in the queue and never started."
    if stop_process(run):
        return f"Stopping **{name}**: the engine saves the adapter at the next step, then ends."
    return f"{name} is not running (state: {run.status().shown})."


def resume(name: str | None) -> tuple[Any, str]:
    """Continue the followed run (failed, stopped or crashed) in its own folder from its last complete
    checkpoint, through the queue. Returns (followed-run dropdown update, message)."""
    try:
        run = runinfo.run_path(name)
        checkpoint = checkpoints.request_resume(run, in_queue=True)
    except (FileNotFoundError, ValueError) as e:
        return gr.skip(), f"❌ Not resumed: {e}"
    queue.start_next()
    waiting = queue.waiting_runs()
    where = f" It waits in the queue (position {waiting.index(run) + 1})." if run in waiting else ""
    return (gr.update(choices=runinfo.run_names(), value=run.name),
            f"Resuming **{run.name}** from `{checkpoint.relative_to(run)}` (step {checkpoint.step}): the charts go on "
            f"from there; what was logged after it is kept in metrics.undone.jsonl.{where}")


def resume_hint(run: RunFolder, shown: State) -> str:
    """For a run that ended early: whether Resume can continue it, and from where."""
    if shown not in checkpoints.RESUMABLE:
        return ""
    last = checkpoints.last_complete(run)
    if last is None:
        return "\n\nNo complete checkpoint was saved before it ended: **Resume** cannot continue it."
    return f"\n\n💾 **Resume** continues it from `{last.relative_to(run)}` (step {last.step})."


def queue_position(run: RunFolder) -> str:
    """Where a waiting run stands in the queue, and what it waits for."""
    waiting = queue.waiting_runs()
    position = waiting.index(run) + 1 if run in waiting else "?"
    active = queue.active_run()
    behind = f"{active.name} is running" if active else "starting"
    return f"waiting in the queue, position {position}: {behind}; it starts when nothing else trains."


def status_markdown(name: str | None) -> str:
    """The status line of the followed run."""
    if not name:
        return "No run yet: set the options below and press **Start**."
    try:
        run = runinfo.run_path(name)
    except FileNotFoundError as e:
        return f"**{e}**"
    status = run.status()
    if status.state.active and status.shown == State.CRASHED:  # its process is gone: say how it ended, once
        status = process.settle(run.path)
    parts = [f"**{name}**", f"state: **{status.label}**", f"step {status.step}/{status.max_steps or '?'}",
             f"time {runinfo.fmt_seconds(status.duration())}"]
    if status.shown == State.RUNNING and status.eta() is not None:
        parts.append(f"ETA {runinfo.fmt_seconds(status.eta())}")
    text = " · ".join(parts)
    if run.accelerate_file.is_file():  # a distributed run: how it was launched
        text += f"\n\nlaunched as `{launch.shown_command(run.config(), run_form.shown_path(run.path))}`"
    if status.waiting:
        text += f"\n\n⏳ {queue_position(run)}"
    if status.error:
        text += f"\n\n❌ {status.error}"
    text += resume_hint(run, status.shown)
    for w in status.health_warnings():  # engine.runs.health's checks, one line each
        text += f"\n\n⚠️ **step {w.get('step')}**: {w.get('message')}"
    return text


def _fingerprint(path: Path | None) -> tuple:
    """Cheap change detector: a file's size and mtime, so unchanged outputs are not resent."""
    try:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns)
    except (OSError, AttributeError):
        return (str(path), None, None)


def refresh(name: str | None, seen: dict | None) -> list:
    """The timer's tick: status, log tail, charts and sample answers of the followed run, re-read
    from its folder.

    Returns [status markdown, resource line, log, *one update per chart slot, sample step slider,
    sample answers, seen]; what comes from a file is skipped while the file is unchanged, so an idle
    page costs a few stat() calls a second. The resource line is made with the status, so the two
    never disagree about whether an engine runs.
    """
    seen = dict(seen or {})
    try:
        run = runinfo.run_path(name) if name else None
    except FileNotFoundError:
        run = None
    out: list[Any] = [status_markdown(name), resources.resources_markdown(run)]
    log_key = _fingerprint(run.log_file if run else None)
    out.append(gr.skip() if seen.get("log") == log_key else (run.log_tail(LOG_TAIL_LINES) if run else ""))
    metrics_key = _fingerprint(run.metrics_file if run else None)
    if seen.get("metrics") == metrics_key:
        out += [gr.skip()] * charts.CHART_SLOTS
    else:
        figures = charts.run_charts(run.metrics() if run else [], run.stage if run else "")
        out += [gr.update(value=f, visible=True) if f is not None else gr.update(visible=False) for f in figures]
    samples_key = _fingerprint(run.samples_file if run else None)
    if seen.get("samples") == samples_key:
        out += [gr.skip(), gr.skip()]
    else:  # new answers: the latest step is shown
        records = run.samples() if run else []
        out += [gr.update(**samples_view.slider_update(records)),
                samples_view.samples_html(records, None, samples_view.run_probes(run))]
    return [*out, {"log": log_key, "metrics": metrics_key, "samples": samples_key}]


def _form(page: Page) -> dict:
    """Every generated field under the top bar's, placed; also the section boxes by section name."""
    by_key = {s.key: s for s in page.specs}
    comps = dict(page.top)
    with gr.Row():
        for key in RUN_BAR:  # init_from's choices are run folder names with their state: it gets room for them
            comps[key] = make_component(by_key[key], min_width=200, scale=2 if key == "init_from" else 1)
    stage = by_key["stage"].default
    boxes = {}
    for section, title in SECTION_TITLES.items():
        rest = [s for s in page.specs if s.section == section and s.key not in comps]
        with gr.Accordion(title, open=section != "distributed", elem_id=f"wb-section-{section}",
                          visible=section not in STAGES or section == stage) as boxes[section]:
            if section == "distributed":  # what the settings can use here; the command is in the preview below
                gr.Markdown(f"This machine: **{launch.devices_text()}**. The launch command is under "
                            "*Config preview and command line*.", elem_id="wb-devices")
            comps.update(zip((s.key for s in rest), build_section(rest)))
    return comps, boxes


def _progress() -> dict:
    gr.Markdown("### Progress")
    with gr.Row():
        monitor = gr.Dropdown(label="followed run", choices=runinfo.run_names(), value=None, scale=1,
                              elem_id="wb-followed-run")
        status_md = gr.Markdown(status_markdown(None), elem_id="wb-status")
    # a callable is re-read on each page load (a value would be the server's start-up reading)
    resources_md = gr.Markdown(resources.resources_markdown, elem_id="wb-resources")
    plots = []
    for start_at in range(0, charts.CHART_SLOTS, 2):  # two charts a row; the followed run's stage fills them
        with gr.Row():
            plots += [gr.Plot(show_label=False) for _ in range(start_at, min(start_at + 2, charts.CHART_SLOTS))]
    with gr.Accordion("The model's answers to the sample prompts (step 0 beside a later step)", open=True):
        sample_step = gr.Slider(0, 1, value=0, step=1, label="step", elem_id="wb-sample-step",
                                info="look back: the answers at the last sample step at or before this one")
        samples_box = gr.HTML(samples_view.samples_html([]), elem_id="wb-samples")
    log = log_box(f"engine.log (last {LOG_TAIL_LINES} lines)", 12, "wb-train-log")
    return {"monitor": monitor, "status": status_md, "resources": resources_md, "plots": plots, "log": log,
            "sample_step": sample_step, "samples": samples_box}


def build(page: Page) -> Tab:
    specs = page.specs
    comps, boxes = _form(page)
    page.form.update(comps)
    fields = [comps[s.key] for s in specs]
    with gr.Row():
        start_btn = gr.Button("Start", variant="primary")
        stop_btn = gr.Button("Stop (or cancel if queued)", variant="stop")
        resume_btn = gr.Button("Resume", elem_id="wb-resume")
        save_btn = gr.Button("Save config")
    error_md, message = gr.Markdown(), gr.Markdown()
    with gr.Accordion("Config preview and command line", open=False, elem_id="wb-preview"):
        with gr.Row():
            yaml_box = gr.Code(language="yaml", label="config.yaml", interactive=False)
            cli_box = gr.Code(language="shell", label="the same run from a terminal", interactive=False,
                              elem_id="wb-cli-command")
    with gr.Accordion("Load settings", open=False):
        with gr.Row():
            load_run = gr.Dropdown(label="from a run's config.yaml", choices=runinfo.run_names(), value=None)
            load_btn = gr.Button("Load", scale=0)
            load_saved = gr.Dropdown(label="from a saved config", choices=run_form.saved_configs(), value=None)
            load_saved_btn = gr.Button("Load", scale=0)
            upload = gr.UploadButton("Load a YAML file", file_types=[".yaml", ".yml"], scale=0)
    p = _progress()
    seen, timer = gr.State({}), gr.Timer(TICK_SECONDS)

    # preprocess=False: the form's values reach engine.config.from_dict as the browser sent them.
    # Gradio's own checks (gr.Number's bounds, a dropdown's choices) would refuse a bad value first
    # with a message that names no field; from_dict's names the key (training.learning_rate: ...).
    preview_out = [yaml_box, cli_box, error_md]
    gr.on([f.change for f in fields], partial(run_form.preview, specs), inputs=fields, outputs=preview_out,
          show_progress="hidden", trigger_mode="always_last", api_name="preview", preprocess=False)
    stage_inputs = [comps[k] for k in STAGE_INPUTS]
    boxes_out = [boxes[s] for s in STAGES] + [boxes["samples"]]
    stage_outputs = [comps[k] for k in STAGE_PICKERS] + boxes_out
    gr.on([comps["stage"].change, comps["data.dataset_dir"].change], run_form.stage_changed,
          inputs=stage_inputs, outputs=stage_outputs, show_progress="hidden")
    comps["model.finetuning_type"].change(lambda kind: gr.update(visible=kind != "full"),
                                          comps["model.finetuning_type"], boxes["lora"], show_progress="hidden",
                                          api_visibility="private")
    start_btn.click(partial(start, specs), fields, [p["monitor"], message], api_name="start", preprocess=False)
    stop_btn.click(stop, p["monitor"], message)
    resume_btn.click(resume, p["monitor"], [p["monitor"], message], api_name="resume")
    save_btn.click(partial(run_form.save_config, specs), fields, [message, load_saved], api_name="save_config",
                   preprocess=False)
    load_saved_btn.click(partial(run_form.load_from_saved, specs), load_saved, fields, api_name="load_saved")
    load_btn.click(partial(run_form.load_from_run, specs), load_run, fields, api_name="load_from_run")
    upload.upload(partial(run_form.load_from_file, specs), upload, fields, api_name="load_from_file")
    refresh_outputs = [p["status"], p["resources"], p["log"], *p["plots"], p["sample_step"], p["samples"], seen]
    p["sample_step"].input(samples_view.show_run, [p["monitor"], p["sample_step"]], p["samples"], show_progress="hidden")
    timer.tick(refresh, [p["monitor"], seen], refresh_outputs, show_progress="hidden")
    p["monitor"].change(lambda name: refresh(name, {}), p["monitor"], refresh_outputs, show_progress="hidden",
                        api_name="follow")
    on_load = [Event(partial(page_loaded, specs), fields, [*fields, *boxes_out, p["monitor"], load_run, message],
                     {"preprocess": False}),
               Event(partial(run_form.preview, specs), fields, preview_out, {"preprocess": False})]
    return Tab({**comps, "fields": fields, "stage_inputs": stage_inputs, "stage_outputs": stage_outputs, **p,
                "load_run": load_run, "preview": preview_out}, on_load=on_load)


def followed_settings(specs: list[FieldSpec], name: str | None) -> list[Any] | None:
    """The form values of the followed run's own config.yaml while it trains or waits in the queue
    (Load settings' path), else None. After a reload during a DPO run the form must not fall back
    to the SFT defaults under it, ready to queue a run the user never meant."""
    try:
        status = runinfo.run_path(name).status()
    except FileNotFoundError:
        return None
    if not (status.engine_alive or status.waiting):
        return None
    values = run_form.load_from_run(specs, name)  # an unreadable config: a warning, and skips
    return None if values == [gr.skip()] * len(specs) else values


def page_loaded(specs: list[FieldSpec], *values: Any) -> list:
    """What a page (re)load re-discovers from disk: the model, dataset and run lists, the run to
    follow (a live one first) and, while that run trains or waits, its settings in the form, so a
    reload or a server restart loses nothing. Returns [*one update per field, *stage boxes, samples
    box, followed run, load-settings run, message]; a field keeps what it shows unless a live run
    fills it."""
    from engine.models.store import model_names

    names = runinfo.run_names()
    followed = runinfo.attach_candidate()
    loaded = followed_settings(specs, followed)
    keys = [s.key for s in specs]
    form = dict(zip(keys, loaded or values))
    stage_updates = run_form.stage_changed(*(form[k] for k in STAGE_INPUTS))
    updates = {key: gr.update(value=form[key]) if loaded else gr.skip() for key in keys}
    updates.update(zip(STAGE_PICKERS, stage_updates))
    model = {"value": form["model.name_or_path"]} if loaded else {}
    updates["model.name_or_path"] = gr.update(choices=model_names(), **model)
    note = (f"ℹ️ The form shows the settings of **{followed}**, the run being followed; **Start** queues a new "
            "run with them." if loaded else gr.skip())
    return [*(updates[k] for k in keys), *stage_updates[len(STAGE_PICKERS):],
            gr.update(choices=names, value=followed), gr.update(choices=names), note]
