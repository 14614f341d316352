"""The workbench web UI: `python -m webui [--host H] [--port P] [--auth USER:PASSWORD] ...` (see main).

Assembly only: the top bar, then the tabs in workflow order (webui/tabs/, one module each with its
layout and its handlers), and what a page load and opening a tab re-read from disk. The UI reads
and writes run folders and starts `python -m engine.train` / `python -m engine.job` processes; it
never imports the trainers (or torch), so a page action is at most a few file reads and one launch.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

import gradio as gr

from engine.paths import runs_root
from engine.runs import queue
from webui import access, run_form, serving
from webui.forms import CSS as FORM_CSS
from webui.forms import make_component
from webui.tabs import Page, Tab, chat, datasets, evaluate, export, runs, train

# Gradio 6 takes css/theme in launch(), not Blocks().
CSS = """
.wb-log textarea { font-family: ui-monospace, monospace; font-size: 12px; }
.wb-runs th, .wb-runs th * { word-break: normal !important; overflow-wrap: normal !important; white-space: nowrap; }
""" + FORM_CSS
TOP_BAR = ("model.name_or_path", "model.template", "model.finetuning_type", "model.dtype")
# Gradio's temp files (uploads among them) are deleted every hour once a day old: an upload must
# outlive the minutes between picking a file and pressing Register, which copies it.
DELETE_CACHE = (3600, 86400)


def top_bar(specs: list) -> dict:
    """Model, chat template, fine-tuning type and dtype, above the tabs: the Datasets tab previews
    with them, the Train tab trains with them."""
    by_key = {s.key: s for s in specs}
    with gr.Row(variant="panel"):
        return {key: make_component(by_key[key], min_width=200) for key in TOP_BAR}


def register(demo: gr.Blocks, tab: gr.Tab, built: Tab) -> None:
    """What a page load re-reads for a tab, and what opening the tab re-reads (runs finished since
    the page loaded appear in its lists)."""
    for event in built.on_load:
        step = demo.load(event.fn, event.inputs, event.outputs, **{"api_visibility": "private", **event.options})
        while event.then is not None:  # a chain of steps, each after the one before succeeded
            event = event.then
            step = step.success(event.fn, event.inputs, event.outputs,
                                **{"api_visibility": "private", **event.options})
    if built.on_select is not None:
        s = built.on_select
        tab.select(s.fn, s.inputs, s.outputs, show_progress="hidden", api_visibility="private",
                   **{"api_name": f"{tab.id}_opened", **s.options})


def build_app(saves_root: str | Path | None = None) -> gr.Blocks:
    """The whole UI. `saves_root` relocates saves/ for this process and the engines it starts
    (they inherit WORKBENCH_SAVES, so model names and `latest:` resolve in the same place)."""
    if saves_root is not None:
        os.environ["WORKBENCH_SAVES"] = str(Path(saves_root).resolve())
    # fill_width: the window's whole width for the tables and the form (Gradio centres ~1200 px otherwise)
    with gr.Blocks(title="workbench", analytics_enabled=False, fill_width=True, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown("## workbench · align language models: datasets → SFT → RM → PPO or DPO → chat → evaluate → export")
        specs = run_form.form_specs()
        page = Page(specs, top_bar(specs), registry_version=gr.State(0))
        with gr.Tabs(selected="train"):  # workflow order; a first visit lands on Train
            datasets_tab = gr.Tab("Datasets", id="datasets", elem_id="wb-datasets")  # filled below: it needs the form
            tabs = {}
            for title, module, elem_id in (("Train", train, "wb-train"), ("Runs", runs, "wb-runs-tab"),
                                           ("Chat", chat, "wb-chat"), ("Evaluate", evaluate, "wb-eval-tab"),
                                           ("Export", export, "wb-export")):
                with gr.Tab(title, id=title.lower(), elem_id=elem_id) as tab:
                    tabs[title] = tab, module.build(page)
        with datasets_tab:
            tabs["Datasets"] = datasets_tab, datasets.build(page)
        for tab, built in tabs.values():
            register(demo, tab, built)
    serving.describe_api_without_values(demo)  # the login page must not list runs, datasets or models
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True, **kwargs) -> None:
    """Start serving, and the queue thread that starts queued runs one at a time while the server
    runs; kwargs go to Blocks.launch (main passes auth and max_file_size). Tests pass block=False
    and close the demo, which ends the queue thread too."""
    demo.launch(server_name=host, server_port=port, css=CSS, ssr_mode=False, show_error=True,
                prevent_thread_lock=True, **kwargs)
    threading.Thread(target=queue.worker, args=(lambda: demo.is_running, runs_root()),
                     name="run-queue", daemon=True).start()
    if block:
        demo.block_thread()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m webui", description="The workbench web UI.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; a non-loopback one needs a login or --insecure)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--saves", help="saves folder (default: $WORKBENCH_SAVES or the repository's saves/)")
    p.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                   help="a login (repeatable); also --auth-file and $WORKBENCH_AUTH (USER:PASSWORD,...)")
    p.add_argument("--auth-file", metavar="FILE", help="logins, one USER:PASSWORD a line (# starts a comment line)")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback address without a login (anyone reaching the port can use it)")
    p.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="a folder the UI may read and write besides the dataset and saves folders (repeatable; "
                        f"also ${access.ENV_DIRS}, {os.pathsep}-separated)")
    p.add_argument("--max-upload-mb", type=int, metavar="N",
                   help=f"largest upload in MB (default: ${serving.ENV_MAX_UPLOAD} or {serving.DEFAULT_MAX_UPLOAD_MB})")
    return p


def logins_and_cap(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[tuple[str, str]], int]:
    """(logins, upload cap in MB) from the options and the environment; a bad one exits with status 2."""
    try:
        users = serving.logins(args.auth, args.auth_file, os.environ.get(serving.ENV_AUTH))
    except serving.LoginError as e:  # names the entry's place, never its text
        p.error(str(e))
    try:
        max_mb = args.max_upload_mb if args.max_upload_mb is not None else serving.max_upload_mb()
    except ValueError:
        p.error(f"{serving.ENV_MAX_UPLOAD}: not a whole number of MB")
    if max_mb < 1:
        p.error("--max-upload-mb: give at least 1")
    return users, max_mb


def refuse_unprotected(p: argparse.ArgumentParser, host: str, users: list, insecure: bool) -> None:
    """A non-loopback address without a login: exit with status 2, or warn loudly under --insecure."""
    if users or serving.is_loopback(host):
        return
    if not insecure:
        p.exit(2, f"{p.prog}: error: {serving.NEEDS_LOGIN.format(host=host)}\n")
    print(serving.INSECURE.format(host=host), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    users, max_mb = logins_and_cap(p, args)
    refuse_unprotected(p, args.host, users, args.insecure)
    access.allow(args.allow_dir)
    launch(build_app(args.saves), args.host, args.port, auth=users or None, max_file_size=max_mb * 2**20,
           auth_message="Log in to the workbench." if users else None)
