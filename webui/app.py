"""The workbench web UI: `python -m webui [--host H] [--port P]`.

Layout and event wiring only; the handlers live in webui.train and webui.runs. The UI reads and
writes run folders and starts `python -m engine.train RUN_DIR` processes; it never imports the
trainers (or torch), so a page action is at most a few file reads and one process launch.
"""

from __future__ import annotations

import argparse
import os
import threading
from functools import partial
from pathlib import Path

import gradio as gr

from engine.config import STAGES
from engine.models.store import model_names
from webui import charts, chat, datasets, evaluate, export, resources, runinfo, runs, train
from webui.forms import FieldSpec, build_section, make_component

# Gradio 6 takes css/theme in launch(), not Blocks().
CSS = """
.wb-log textarea { font-family: ui-monospace, monospace; font-size: 12px; }
.wb-runs th, .wb-runs th * { word-break: normal !important; overflow-wrap: normal !important; white-space: nowrap; }
"""
TOP_BAR = ("model.name_or_path", "model.template", "model.finetuning_type", "model.dtype")
RUN_BAR = ("stage", "name", "init_from", "data.dataset", "data.eval_dataset")
SECTION_TITLES = {"lora": "LoRA", "data": "Data", "training": "Training",
                  **{name: f"{stage.title}: options" for name, stage in STAGES.items()}}
TICK_SECONDS = 1.0


def _top_bar(specs: list[FieldSpec]) -> dict:
    """Model, chat template, fine-tuning type and dtype, above the tabs: the Datasets tab previews
    with them, the Train tab trains with them."""
    by_key = {s.key: s for s in specs}
    with gr.Row(variant="panel"):
        return {key: make_component(by_key[key], min_width=200) for key in TOP_BAR}


def _form(specs: list[FieldSpec], top: dict) -> tuple[dict, dict]:
    """Every generated field, placed: (components by key, section boxes by section name)."""
    by_key = {s.key: s for s in specs}
    comps = dict(top)
    with gr.Row():
        for key in RUN_BAR:
            comps[key] = make_component(by_key[key], min_width=200)
    stage = by_key["stage"].default
    boxes = {}
    for section, title in SECTION_TITLES.items():
        rest = [s for s in specs if s.section == section and s.key not in comps]
        visible = section not in STAGES or section == stage
        with gr.Accordion(title, open=True, visible=visible) as boxes[section]:
            comps.update(zip((s.key for s in rest), build_section(rest)))
    return comps, boxes


def _train_tab(specs: list[FieldSpec], top: dict) -> dict:
    comps, boxes = _form(specs, top)
    fields = [comps[s.key] for s in specs]
    with gr.Row():
        start_btn = gr.Button("Start", variant="primary")
        stop_btn = gr.Button("Stop (or cancel if queued)", variant="stop")
        save_btn = gr.Button("Save config")
    error_md = gr.Markdown()
    message = gr.Markdown()
    with gr.Accordion("Config preview and command line", open=False):
        with gr.Row():
            yaml_box = gr.Code(language="yaml", label="config.yaml", interactive=False)
            cli_box = gr.Code(language="shell", label="the same run from a terminal", interactive=False)
    with gr.Accordion("Load settings", open=False):
        with gr.Row():
            load_run = gr.Dropdown(label="from a run's config.yaml", choices=runinfo.run_names(), value=None)
            load_btn = gr.Button("Load", scale=0)
            load_saved = gr.Dropdown(label="from a saved config", choices=train.saved_configs(), value=None)
            load_saved_btn = gr.Button("Load", scale=0)
            upload = gr.UploadButton("Load a YAML file", file_types=[".yaml", ".yml"], scale=0)
    gr.Markdown("### Progress")
    with gr.Row():
        monitor = gr.Dropdown(label="followed run", choices=runinfo.run_names(), value=None, scale=1)
        status_md = gr.Markdown(runinfo.status_markdown(None), elem_id="wb-status")
    resources_md = gr.Markdown(resources.resources_markdown(), elem_id="wb-resources")
    plots = []
    for start in range(0, charts.CHART_SLOTS, 2):  # two charts a row; the followed run's stage fills them
        with gr.Row():
            plots += [gr.Plot(show_label=False) for _ in range(start, min(start + 2, charts.CHART_SLOTS))]
    log_box = gr.Textbox(label=f"engine.log (last {runinfo.LOG_TAIL_LINES} lines)", lines=12, max_lines=12,
                         interactive=False, autoscroll=True, elem_classes=["wb-log"])
    seen = gr.State({})
    timer = gr.Timer(TICK_SECONDS)

    # preprocess=False: the form's values reach engine.config.from_dict as the browser sent them.
    # Gradio's own checks (gr.Number's bounds, a dropdown's choices) would refuse a bad value first
    # with a message that names no field; from_dict's names the key (training.learning_rate: ...).
    gr.on([f.change for f in fields], partial(train.preview, specs), inputs=fields,
          outputs=[yaml_box, cli_box, error_md], show_progress="hidden", trigger_mode="always_last",
          api_name="preview", preprocess=False)
    stage_inputs = [comps[k] for k in ("stage", "data.dataset_dir", "data.dataset", "data.eval_dataset", "init_from",
                                       *train.RUN_PICKERS)]
    stage_outputs = [comps[k] for k in ("data.dataset", "data.eval_dataset", "init_from", *train.RUN_PICKERS)] + \
        [boxes[s] for s in STAGES]
    gr.on([comps["stage"].change, comps["data.dataset_dir"].change], train.stage_changed,
          inputs=stage_inputs, outputs=stage_outputs, show_progress="hidden")
    comps["model.finetuning_type"].change(lambda kind: gr.update(visible=kind != "full"),
                                          comps["model.finetuning_type"], boxes["lora"], show_progress="hidden",
                                          api_visibility="private")
    start_btn.click(partial(train.start, specs), fields, [monitor, message], api_name="start",
                    preprocess=False)
    stop_btn.click(train.stop, monitor, message)
    save_btn.click(partial(train.save_config, specs), fields, [message, load_saved], api_name="save_config",
                   preprocess=False)
    load_saved_btn.click(partial(train.load_from_saved, specs), load_saved, fields, api_name="load_saved")
    load_btn.click(partial(train.load_from_run, specs), load_run, fields, api_name="load_from_run")
    upload.upload(partial(train.load_from_file, specs), upload, fields, api_name="load_from_file")
    refresh_outputs = [status_md, log_box, *plots, seen]
    timer.tick(train.refresh, [monitor, seen], refresh_outputs, show_progress="hidden")
    timer.tick(resources.resources_markdown, None, resources_md, show_progress="hidden", api_visibility="private")
    monitor.change(lambda name: train.refresh(name, {}), monitor, refresh_outputs, show_progress="hidden",
                   api_name="follow")
    return {"comps": comps, "fields": fields, "stage_inputs": stage_inputs, "stage_outputs": stage_outputs,
            "monitor": monitor, "load_run": load_run, "preview": [yaml_box, cli_box, error_md]}


def _runs_tab() -> dict:
    refresh_btn = gr.Button("Refresh", scale=0)
    table = gr.Dataframe(headers=runs.HEADERS, value=[], interactive=False, wrap=True, label="runs",
                         elem_classes=["wb-runs"])
    with gr.Row():
        overlay_runs = gr.Dropdown(label="runs to compare", multiselect=True, choices=[], scale=3)
        overlay_metric = gr.Dropdown(label="metric", choices=[], value=None, scale=1)
    overlay_plot = gr.Plot(show_label=False, value=charts.empty_figure("", "pick runs to compare"))
    with gr.Row():
        view_run = gr.Dropdown(label="run to view or delete", choices=[], value=None, scale=3)
        delete_btn = gr.Button("Delete run…", variant="stop", scale=0)
    with gr.Row(visible=False) as confirm_row:
        confirm_btn = gr.Button("Yes, delete it", variant="stop")
        cancel_btn = gr.Button("Cancel")
    delete_msg = gr.Markdown()
    with gr.Row():
        config_view = gr.Code(language="yaml", label="config.yaml", interactive=False)
        log_view = gr.Textbox(label="engine.log", lines=20, max_lines=20, interactive=False,
                              elem_classes=["wb-log"])

    refresh_btn.click(runs.refresh, None, [table, overlay_runs, view_run], api_name="refresh_runs")
    overlay_runs.change(runs.metric_choices, [overlay_runs, overlay_metric], overlay_metric)
    gr.on([overlay_runs.change, overlay_metric.change], runs.overlay, [overlay_runs, overlay_metric], overlay_plot)
    view_run.change(runs.view, view_run, [config_view, log_view])
    delete_btn.click(runs.ask_delete, view_run, [confirm_row, delete_msg])
    confirm_btn.click(runs.confirm_delete, [view_run, overlay_runs],
                      [confirm_row, delete_msg, table, overlay_runs, view_run])
    cancel_btn.click(runs.cancel_delete, None, [confirm_row, delete_msg])
    return {"table": table, "overlay_runs": overlay_runs, "view_run": view_run}


def on_load(stage: str, dataset_dir: str, dataset: str, eval_dataset: str, init_from: str, *run_picks: str) -> list:
    """Everything a page (re)load re-discovers from disk: model and run lists, and the run to
    follow (a live one first), so a reload or a server restart loses nothing."""
    names = runinfo.run_names()
    return [gr.update(choices=model_names()),
            *train.stage_changed(stage, dataset_dir, dataset, eval_dataset, init_from, *run_picks),
            gr.update(choices=names, value=runinfo.attach_candidate()),
            gr.update(choices=names),
            *runs.refresh()]


def build_app(saves_root: str | Path | None = None) -> gr.Blocks:
    """The whole UI. `saves_root` relocates saves/ for this process and the engines it starts
    (they inherit WORKBENCH_SAVES, so model names and `latest:` resolve in the same place)."""
    if saves_root is not None:
        os.environ["WORKBENCH_SAVES"] = str(Path(saves_root).resolve())
    specs = train.form_specs()
    with gr.Blocks(title="workbench", analytics_enabled=False) as demo:
        gr.Markdown("## workbench · align language models: datasets → SFT → RM → PPO or DPO → chat → evaluate → export")
        top = _top_bar(specs)
        with gr.Tabs(selected="train"):  # tabs in workflow order; a first visit lands on Train
            # filled below: it needs the Train tab's data fields
            datasets_tab = gr.Tab("Datasets", id="datasets", elem_id="wb-datasets")
            with gr.Tab("Train", id="train", elem_id="wb-train"):
                t = _train_tab(specs, top)
            with gr.Tab("Runs", elem_id="wb-runs-tab") as runs_tab:
                r = _runs_tab()
            with gr.Tab("Chat", elem_id="wb-chat") as chat_tab:
                c = chat.build_tab()
            with gr.Tab("Evaluate", elem_id="wb-eval-tab") as eval_tab:
                v = evaluate.build_tab()
            with gr.Tab("Export", elem_id="wb-export") as export_tab:
                e = export.build_tab()
        with datasets_tab:  # the Train tab's dataset folder and cutoff_len, the top bar's model and template
            d = datasets.build_tab(t["comps"]["data.dataset_dir"], top["model.name_or_path"],
                                   top["model.template"], t["comps"]["data.cutoff_len"])
        demo.load(on_load, t["stage_inputs"],
                  [t["comps"]["model.name_or_path"], *t["stage_outputs"], t["monitor"], t["load_run"],
                   r["table"], r["overlay_runs"], r["view_run"]])
        demo.load(partial(train.preview, specs), t["fields"], t["preview"], api_visibility="private",
                  preprocess=False)
        for tab in (c, e, v):  # run and model lists re-read from disk on every page load
            refresh_tab, tab_outputs = tab["on_load"]
            demo.load(refresh_tab, None, tab_outputs, api_visibility="private")
        demo.load(d["on_load"][0], None, d["on_load"][1], api_visibility="private")
        # runs finished since the page loaded appear when their tab is opened
        runs_tab.select(runs.refresh, None, [r["table"], r["overlay_runs"], r["view_run"]], show_progress="hidden")
        chat_tab.select(chat.refresh, [c["base"], c["columns"]], [c["base"], c["columns"]], show_progress="hidden")
        export_tab.select(export.refresh, e["run"], [e["run"], e["table"]], show_progress="hidden")
        eval_tab.select(evaluate.refresh, v["run"], v["on_load"][1], show_progress="hidden")
        # a registered, renamed or removed dataset shows up in the Train tab's pickers at once
        d["registry_version"].change(train.stage_changed, t["stage_inputs"], t["stage_outputs"], show_progress="hidden")
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kwargs) -> None:
    """Start serving, and the queue thread that starts queued runs one at a time; kwargs go to
    Blocks.launch (tests pass prevent_thread_lock=True)."""
    threading.Thread(target=train.queue_worker, name="run-queue", daemon=True).start()
    demo.launch(server_name=host, server_port=port, css=CSS, ssr_mode=False, show_error=True, **kwargs)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m webui", description="The workbench web UI.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--saves", help="saves folder (default: $WORKBENCH_SAVES or the repository's saves/)")
    args = p.parse_args(argv)
    launch(build_app(args.saves), args.host, args.port)
