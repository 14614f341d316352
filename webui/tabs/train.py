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
from engine.runs.folder import RunFolder, swap_weights
from engine.runs.process import stop as stop_process
from engine.runs.status import State, Status
from webui import charts, form_answers, resources, run_form, runinfo, samples_view
from webui.forms import FieldSpec, build_section, make_component, validate
from webui.log_box import log_box
from webui.named import by_name
from webui.tabs import Event, Page, Tab

RUN_BAR = ("stage", "name", "init_from", "data.dataset", "data.eval_dataset")
STAGE_INPUTS = (*run_form.ASKED, *run_form.STAGE_PICKERS)  # run_form.stage_changed's inputs
SECTION_TITLES = {"lora": "LoRA", "data": "Data", "training": "Training",
                  "samples": "Samples: the model's answers to a few prompts during training, and the alarms on them",
                  "distributed": "Distributed: one run on several processes, GPUs or machines (accelerate)",
                  **{name: f"{stage.title}: options" for name, stage in STAGES.items()}}
CHARTS = tuple(f"chart {i}" for i in range(charts.CHART_SLOTS))  # the chart slots' names in refresh's answer
LOG_TAIL_LINES = 40
TICK_SECONDS = 1.0
MAX_TICK_SECONDS = 8.0
WATCH = gr.update(value=TICK_SECONDS, active=True)  # the timer's answer to Start, Resume: watch closely


def start(specs: list[FieldSpec], *values: Any) -> dict[str, Any]:
    """Validate, write the run folder, queue it (it starts at once when nothing else trains).
    Answers {"monitor" (the followed-run dropdown), "message"}."""
    try:
        cfg = run_form.preflight(validate(specs, list(values)))
    except ConfigError as e:
        gr.Warning(str(e))
        return {"message": f"❌ {e}"}
    try:
        run = queue.enqueue(cfg)
    except OSError as e:  # a full disk: create_run removed the half-made folder; say what to do
        gr.Warning(str(e))
        return {"message": f"❌ Not started: {e}"}
    started = queue.start_next()
    waiting = queue.waiting_runs()
    # the queue's worker may have started it (and a tiny run ended) between the two calls
    if started == run or run not in waiting:
        message = f"Started **{run.name}**."
    else:
        active = queue.active_run()
        message = (f"Queued **{run.name}** (position {waiting.index(run) + 1}): it starts when "
                   f"{active.name if active else 'the current run'} ends, so two trainings never share the CPU/GPU.")
    return {"monitor": gr.update(choices=runinfo.run_names(), value=run.name), "message": message, "timer": WATCH}


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


def swap(name: str | None) -> str:
    """The followed run's weights swapped with those it kept of its last check without an alarm."""
    try:
        step = swap_weights(runinfo.run_path(name))
    except FileNotFoundError as e:
        return f"❌ {e}"
    return f"**{name}** now uses the weights of step {step} (adapter/); chat, evaluation and export read them."


def swap_button(status: Status | None) -> dict:
    """The swap button: shown for a finished run that keeps other weights, naming their step."""
    if status is None or status.clean_step is None or status.state.active:
        return gr.update(visible=False)
    return gr.update(visible=True, value=f"Use the weights of step {status.clean_step}")


def resume(name: str | None) -> dict[str, Any]:
    """Continue the followed run (failed, stopped or crashed) in its own folder from its last complete
    checkpoint, through the queue. Answers {"monitor" (the followed-run dropdown), "message"}."""
    try:
        run = runinfo.run_path(name)
        checkpoint = checkpoints.request_resume(run, in_queue=True)
    except (FileNotFoundError, ValueError) as e:
        return {"message": f"❌ Not resumed: {e}"}
    queue.start_next()
    waiting = queue.waiting_runs()
    where = f" It waits in the queue (position {waiting.index(run) + 1})." if run in waiting else ""
    return {"monitor": gr.update(choices=runinfo.run_names(), value=run.name), "timer": WATCH,
            "message": f"Resuming **{run.name}** from `{checkpoint.relative_to(run)}` (step {checkpoint.step}): the "
                       f"charts go on from there; what was logged after it is kept in metrics.undone.jsonl.{where}"}


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
    if status.shown == State.RUNNING and status.activity:
        text += f"\n\n🔎 now {status.activity}"
    elif status.shown == State.RUNNING and status.next_check is not None:
        text += f"\n\n🔎 the sample answers are checked next at step {status.next_check}"
    if run.accelerate_file.is_file():  # a distributed run: how it was launched
        text += f"\n\nlaunched as `{launch.shown_command(run.config(), run_form.shown_path(run.path))}`"
    if status.waiting:
        text += f"\n\n⏳ {queue_position(run)}"
    if status.error:
        text += f"\n\n❌ {status.error}"
    text += resume_hint(run, status.shown)
    if status.clean_step is not None and not status.state.active:
        now = status.weights_step or status.step
        text += (f"\n\n💾 The run's weights (adapter/) are those of step {now}; clean_adapter/ keeps step "
                 f"{status.clean_step}'s{' (the last check without an alarm)' if status.weights_step is None else ''}: "
                 f"**Use the weights of step {status.clean_step}** swaps them (and back).")
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


def ticking(status: Status | None, changed: bool, seen: dict) -> list:
    """The timer's next [interval, active]: every TICK_SECONDS while the followed run's files change,
    doubling up to MAX_TICK_SECONDS while they do not, and every MAX_TICK_SECONDS while no run is live
    (Start, Resume and following a run bring it back to TICK_SECONDS at once; the slow tick notices a
    run started elsewhere)."""
    if status is None or not status.state.active:
        return [MAX_TICK_SECONDS, True]
    return [TICK_SECONDS if changed else min(MAX_TICK_SECONDS, (seen.get("timer") or [TICK_SECONDS])[0] * 2), True]


def refresh(name: str | None, seen: dict | None) -> dict[str, Any]:
    """The timer's tick: status, log tail, charts and sample answers of the followed run, re-read
    from its folder.

    Answers {"status", "resources", "log", *CHARTS (one per chart slot), "sample_step", "samples",
    "swap_btn", "timer", "seen"}; what comes from a file is left out while the file is unchanged, and
    the timer slows down while nothing changes and stops when the run is over, so an open page costs
    next to nothing. The resource line is made with the status, so the two never disagree about
    whether an engine runs.
    """
    seen = dict(seen or {})
    try:
        run = runinfo.run_path(name) if name else None
    except FileNotFoundError:
        run = None
    out: dict[str, Any] = {"resources": resources.resources_markdown(run)}
    if seen.get("status_text") != (text := status_markdown(name)):
        out["status"] = seen["status_text"] = text
    keys = {"log": _fingerprint(run.log_file if run else None),
            "metrics": _fingerprint(run.metrics_file if run else None),
            "samples": _fingerprint(run.samples_file if run else None),
            "status": _fingerprint(run.status_file if run else None)}
    if seen.get("log") != keys["log"]:
        out["log"] = run.log_tail(LOG_TAIL_LINES) if run else ""
    if seen.get("metrics") != keys["metrics"]:
        figures = charts.run_charts(run.metrics() if run else [], run.stage if run else "")
        out.update({slot: gr.update(value=f, visible=True) if f is not None else gr.update(visible=False)
                    for slot, f in zip(CHARTS, figures)})
    status = run.status() if run else None  # read once for the button and the timer
    if seen.get("status") != keys["status"]:
        out["swap_btn"] = swap_button(status)
    if seen.get("samples") != keys["samples"]:  # new answers: the latest step is shown
        records = run.samples() if run else []
        out["sample_step"] = gr.update(**samples_view.slider_update(records))
        out["samples"] = samples_view.samples_html(records, None, samples_view.run_probes(run))
    changed = any(seen.get(k) != v for k, v in keys.items())
    timer = ticking(status, changed, seen)
    if timer != seen.get("timer"):
        out["timer"] = gr.update(value=timer[0], active=timer[1])
    return {**out, "seen": {**keys, "timer": timer, "status_text": seen.get("status_text")}}



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


def _controls() -> dict:
    """Start, Stop, Resume and Save config, the message lines, the config preview and Load settings."""
    c: dict[str, Any] = {}
    with gr.Row():
        c["start_btn"] = gr.Button("Start", variant="primary")
        c["stop_btn"] = gr.Button("Stop (or cancel if queued)", variant="stop")
        c["resume_btn"] = gr.Button("Resume", elem_id="wb-resume")
        c["save_btn"] = gr.Button("Save config")
        c["swap_btn"] = gr.Button("Use the kept weights", visible=False, elem_id="wb-swap-weights")
    error_md, c["message"] = gr.Markdown(), gr.Markdown()
    with gr.Accordion("Config preview and command line", open=False, elem_id="wb-preview"), gr.Row():
        c["preview"] = {"yaml": gr.Code(language="yaml", label="config.yaml", interactive=False),
                        "command": gr.Code(language="shell", label="the same run from a terminal", interactive=False,
                                           elem_id="wb-cli-command"),
                        "error": error_md}
    with gr.Accordion("Load settings", open=False), gr.Row():
        c["load_run"] = gr.Dropdown(label="from a run's config.yaml", choices=runinfo.run_names(), value=None)
        c["load_btn"] = gr.Button("Load", scale=0)
        c["load_saved"] = gr.Dropdown(label="from a saved config", choices=run_form.saved_configs(), value=None)
        c["load_saved_btn"] = gr.Button("Load", scale=0)
        c["upload"] = gr.UploadButton("Load a YAML file", file_types=[".yaml", ".yml"], scale=0)
    return c


def _wire_form(specs: list[FieldSpec], c: dict, page: Page) -> None:
    """The form's own events: the previews, the stage answer (the pickers and the sections shown) and
    the LoRA box."""
    # preprocess=False: the form's values reach engine.config.from_dict as the browser sent them.
    # Gradio's own checks (gr.Number's bounds, a dropdown's choices) would refuse a bad value first
    # with a message that names no field; from_dict's names the key (training.learning_rate: ...).
    previewed = by_name(partial(run_form.preview, specs), c["preview"])
    gr.on([f.change for f in c["fields"]], inputs=c["fields"], **previewed, show_progress="hidden",
          trigger_mode="always_last", api_name="preview", preprocess=False)
    # One listener for whatever changes the pickers' choices (a registered, renamed or removed dataset
    # too): a change while one is answered waits for that answer (always_last), so answers come in order.
    triggers = [c["stage"].change, c["data.dataset_dir"].change]
    if page.registry_version is not None:
        triggers.append(page.registry_version.change)
    answered = gr.on(triggers, run_form.stage_changed, inputs=[c[k] for k in STAGE_INPUTS],
                     outputs=c["form_answer"], show_progress="hidden", trigger_mode="always_last",
                     api_name="stage_changed")
    apply = _apply_answer(c, run_form.STAGE_PICKERS)  # a stage answer sets the pickers alone
    answered.success(apply.fn, apply.inputs, apply.outputs, **apply.options)
    c["model.finetuning_type"].change(lambda kind: gr.update(visible=kind != "full"), c["model.finetuning_type"],
                                      c["boxes"]["lora"], show_progress="hidden", api_visibility="private")


def _wire_actions(specs: list[FieldSpec], c: dict, seen: gr.State, timer: gr.Timer) -> None:
    """Start, Stop, Resume, Save config, Load settings, and the followed run's refresh."""
    fields = {key: c[key] for key in c["field_keys"]}
    started = {"monitor": c["monitor"], "message": c["message"], "timer": timer}
    refreshed = {"status": c["status"], "resources": c["resources"], "log": c["log"], **dict(zip(CHARTS, c["plots"])),
                 "sample_step": c["sample_step"], "samples": c["samples"], "swap_btn": c["swap_btn"], "timer": timer,
                 "seen": seen}
    c["start_btn"].click(inputs=c["fields"], **by_name(partial(start, specs), started), api_name="start",
                         preprocess=False)
    c["stop_btn"].click(stop, c["monitor"], c["message"])
    c["resume_btn"].click(inputs=c["monitor"], **by_name(resume, started), api_name="resume")
    c["swap_btn"].click(swap, c["monitor"], c["message"], api_name="swap_weights")
    c["save_btn"].click(inputs=c["fields"], **by_name(partial(run_form.save_config, specs),
                                                      {"message": c["message"], "saved_configs": c["load_saved"]}),
                        api_name="save_config", preprocess=False)
    for listener, source, handler, api_name in (
            (c["load_saved_btn"].click, c["load_saved"], run_form.load_from_saved, "load_saved"),
            (c["load_btn"].click, c["load_run"], run_form.load_from_run, "load_from_run"),
            (c["upload"].upload, c["upload"], run_form.load_from_file, "load_from_file")):
        listener(inputs=source, **by_name(partial(handler, specs), fields), api_name=api_name)
    c["sample_step"].input(samples_view.show_run, [c["monitor"], c["sample_step"]], c["samples"],
                           show_progress="hidden")
    timer.tick(inputs=[c["monitor"], seen], **by_name(refresh, refreshed), show_progress="hidden")
    c["monitor"].change(inputs=c["monitor"], **by_name(follow, refreshed), show_progress="hidden",
                        api_name="follow")


def _apply_answer(c: dict, targets: tuple[str, ...] | None = None) -> Event:
    """The browser-side step that applies the answers in the form's answer box (webui.form_answers)
    to the fields in ``targets`` (default: all)."""
    sections = {form_answers.section_key(s): c["boxes"][s] for s in run_form.stage_sections()}
    return form_answers.apply_step({key: c[key] for key in c["field_keys"]}, c["form_answer"], sections, targets)


def _on_load(specs: list[FieldSpec], c: dict) -> list[Event]:
    """What a page load re-reads (page_loaded, then its answer to the form applied) and previews."""
    loaded = {"model.name_or_path": c["model.name_or_path"], "form_answer": c["form_answer"], "monitor": c["monitor"],
              "load_run": c["load_run"], "message": c["message"]}
    return [Event(inputs=c["fields"], **by_name(partial(page_loaded, specs), loaded), options={"preprocess": False},
                  then=_apply_answer(c)),
            Event(inputs=c["fields"], **by_name(partial(run_form.preview, specs), c["preview"]),
                  options={"preprocess": False})]


def build(page: Page) -> Tab:
    specs = page.specs
    comps, boxes = _form(page)
    page.form.update(comps)
    c = {**comps, **_controls(), **_progress(), "boxes": boxes, "fields": [comps[s.key] for s in specs],
         "field_keys": [s.key for s in specs], "form_answer": form_answers.answer_box()}
    _wire_form(specs, c, page)
    _wire_actions(specs, c, gr.State({}), gr.Timer(TICK_SECONDS))
    return Tab(c, on_load=_on_load(specs, c))


def follow(name: str | None) -> dict[str, Any]:
    """A run picked to follow: everything refresh shows, read afresh."""
    return refresh(name, {})


def followed_settings(specs: list[FieldSpec], name: str | None) -> dict[str, Any] | None:
    """The form values (by field key) of the followed run's own config.yaml (Load settings' path),
    whatever its state, else None. A reload during a DPO run must not put the SFT defaults under it,
    ready to queue a run the user never meant; after a run ended, the form it was started from is
    what the user was working on (the next run is most often a change of it)."""
    # an unreadable config (or a run removed meanwhile): a warning, and no values
    return (run_form.load_from_run(specs, name) or None) if name else None


def page_loaded(specs: list[FieldSpec], *values: Any) -> dict[str, Any]:
    """What a page (re)load re-discovers from disk: the model, dataset and run lists, the run to
    follow (a live one first, else the newest) and its settings in the form, so a reload or a server
    restart loses nothing. Answers "model.name_or_path" (its choices), "monitor"
    (the followed run), "load_run", "message" and "form_answer": the answers applied in the browser
    (webui.form_answers), the run's settings first, then the stage answer for the form they make. A
    field keeps what it shows unless the run's settings fill it, and what the user changed before the
    answer arrived stays."""
    from engine.models.store import model_names

    names = runinfo.run_names()
    followed = runinfo.attach_candidate()
    loaded = followed_settings(specs, followed)
    shown = dict(zip((s.key for s in specs), values))
    form = loaded or shown
    initial = {s.key: s.kwargs.get("value") for s in specs}  # what the page starts with
    answers = [form_answers.fill(loaded, shown, initial)] if loaded else []
    answer = {"model.name_or_path": gr.update(choices=model_names()), "load_run": gr.update(choices=names),
              "monitor": gr.update(choices=names, value=followed),
              "form_answer": [*answers, run_form.stage_changed(*(form[k] for k in STAGE_INPUTS))]}
    if loaded:
        answer["message"] = (f"ℹ️ The form shows the settings of **{followed}**, the run being followed; **Start** "
                             "queues a new run with them (what you changed before the page loaded is kept).")
    return answer
