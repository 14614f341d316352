"""The Chat tab: one prompt, up to four columns (the bare base model and finished runs), answers
streamed side by side with the same sampling settings and seed. A single-turn comparison: each
Send asks every column afresh (no history), which keeps the columns comparable.

The models run in this process (inference, never training) through engine.inference.chat, imported when a
prompt is sent: building the page imports neither torch nor transformers.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import gradio as gr

from engine.config import Sampling, policy_stages
from engine.config.fields import build as build_settings
from engine.models.store import DEFAULT_MODEL, model_names
from engine.runs import degeneration
from webui import access, runinfo
from webui.forms import refreshed, setting
from webui.named import by_name
from webui.tabs import Event, Page, Tab

BASE_VALUE = "__base__"  # engine.inference.chat.BASE_KEY, spelled here so the page builds without torch
BASE_LABEL = "bare base model"
MAX_COLUMNS = 4
_STATE_ICONS = {"loading": "⏳ loading models…", "waiting": "⏳ waits for the batch before it…"}
# Send's stop flag per browser session, so one user's Stop never ends another user's answers.
_stops: dict[str, threading.Event] = {}



def column_choices() -> list[tuple[str, str]]:
    return [(BASE_LABEL, BASE_VALUE), *runinfo.finished_runs(policy_stages())]


def default_base(models: list[str]) -> str | None:
    """The base of the newest finished run (what one most likely compares against), else the
    default model, else any."""
    for _label, name in runinfo.finished_runs(policy_stages()):
        model = (runinfo.run_path(name).raw_config().get("model") or {}).get("name_or_path")
        if model in models:
            return model
    return DEFAULT_MODEL if DEFAULT_MODEL in models else (models[0] if models else None)


def refresh(base: str | None = None, keys: list[str] | None = None) -> dict[str, Any]:
    """{"base" (the base model), "columns"} with the lists re-read from disk, keeping what is still
    available; a value is sent only where it changes (forms.refreshed)."""
    models, choices = model_names(), column_choices()
    values = {value for _label, value in choices}
    kept = [k for k in keys or [BASE_VALUE] if k in values]
    return {"base": refreshed(models, base, base if base in models else default_base(models)),
            "columns": refreshed(choices, keys, kept)}


def restore(picked: dict | None) -> dict[str, Any]:
    """A page load: the base model and columns this browser picked last (those still available),
    else the defaults."""
    picked = picked if isinstance(picked, dict) else {}
    models, choices = model_names(), column_choices()
    values = {value for _label, value in choices}
    base = picked.get("base") if picked.get("base") in models else default_base(models)
    keys = [k for k in picked.get("columns") or [] if isinstance(k, str) and k in values] or [BASE_VALUE]
    return {"base": gr.update(choices=models, value=base), "columns": gr.update(choices=choices, value=keys)}


def slot(part: str, i: int) -> str:
    """The name of a part of column ``i`` in the tab's answers: "box 0", "answer 0", "stats 0", ..."""
    return f"{part} {i}"


def column_label(key: str, base: str | None) -> str:
    if key == BASE_VALUE:
        return f"{base or 'base model'} (base)"
    try:
        return f"{key} ({runinfo.run_path(key).stage or '?'})"
    except FileNotFoundError:
        return f"{key} (deleted)"


def show_columns(keys: list[str] | None, base: str | None) -> dict[str, Any]:
    """The slots' "box" and "answer" (see slot): one visible slot per picked key, labelled, emptied."""
    keys = list(keys or [])[:MAX_COLUMNS]
    out = {}
    for i in range(MAX_COLUMNS):
        label = column_label(keys[i], base) if i < len(keys) else ""
        out[slot("box", i)] = gr.update(visible=i < len(keys))
        out[slot("answer", i)] = gr.update(label=label, value="")
    return out


def stats_text(answer) -> str:
    """One line under an answer: its state, tokens and speed."""
    if answer.state in _STATE_ICONS:
        return _STATE_ICONS[answer.state]
    speed = f"{answer.tokens} tokens · {answer.seconds:.1f} s · {answer.tokens_per_second:.1f} tokens/s"
    line = {"generating": f"✍️ {speed}", "done": f"✅ {speed}",
            "length": f"✂️ {speed} · reached max new tokens", "stopped": f"⏹ {speed} · stopped"}[answer.state]
    if answer.state != "generating":  # marked as the samples panel marks the training's answers
        if not answer.text.strip():
            line += " · ⚠️ **empty**"
        elif degeneration.loops(answer.text):
            line += f" · ⚠️ **loops** ({degeneration.repeated_ngram_share(answer.text):.0%} repeated)"
    return line


def _outputs(message: str, answers: list | None, keys: list[str]) -> dict[str, Any]:
    """{"message", then per slot: its "box", "answer" and "stats" (see slot)}; without answers (an
    error) each answer and stats line stays as it was."""
    out = {"message": message}
    for i in range(MAX_COLUMNS):
        if answers is not None and i < len(answers):
            a = answers[i]
            out.update({slot("box", i): gr.update(visible=True),
                        slot("answer", i): gr.update(label=a.label, value=a.text), slot("stats", i): stats_text(a)})
        else:
            out[slot("box", i)] = gr.update(visible=i < len(keys))
            if answers is not None:
                out[slot("stats", i)] = ""
    return out


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


def _engine_keys(keys: list[str]) -> list[str]:
    """Run names checked to be run folders under saves/runs (a browser can send anything)."""
    return [k if k == BASE_VALUE else str(runinfo.run_path(k)) for k in keys]


def send(base: str | None, keys: list[str] | None, prompt: str | None, system: str | None,
         max_new_tokens: float, temperature: float, top_p: float, seed: float,
         request: gr.Request | None = None) -> Iterator[dict[str, Any]]:
    """Stream every column's answer: yields {"message", and per slot its "box", "answer" and "stats"}."""
    from engine.inference import chat

    keys, stop = list(keys or []), threading.Event()
    _stops[_session(request)] = stop
    start = time.monotonic()
    try:
        if not base:
            raise chat.ChatError("pick a base model")
        access.confine_model(base)  # a folder path from the browser must be in the allowed folders
        sampling = build_settings(Sampling, {"system": system or "", "max_new_tokens": max_new_tokens,
                                    "temperature": temperature, "top_p": top_p, "seed": seed or 0},
                         "sampling", key=lambda _section, name: name)  # the error names the widget's field
        answers = None
        for answers in chat.stream_chat(base, _engine_keys(keys), prompt or "", sampling, stop):
            yield _outputs("", answers, keys)
        done = "Stopped" if stop.is_set() else "Answered"
        yield _outputs(f"{done} in {time.monotonic() - start:.1f} s.", answers, keys)
    except (ValueError, OSError) as e:  # ChatError, ConfigError, a run deleted meanwhile
        yield _outputs(f"❌ {e}", None, keys)
    finally:
        if _stops.get(_session(request)) is stop:
            del _stops[_session(request)]


def stop(request: gr.Request | None = None) -> None:
    """End this session's answers at the next token; Send's stream then shows them as stopped."""
    event = _stops.get(_session(request))
    if event is not None:
        event.set()


def clear(keys: list[str] | None, base: str | None, request: gr.Request | None = None) -> dict[str, Any]:
    """Stop anything still answering and empty the prompt and every column: {"prompt", "message", and
    per slot its "box", "answer" and "stats"}."""
    stop(request)
    return {"prompt": "", "message": "", **show_columns(keys, base),
            **{slot("stats", i): "" for i in range(MAX_COLUMNS)}}


def build(page: Page) -> Tab:
    gr.Markdown("One prompt goes to every column with the same settings and seed. The bare base and the "
                "LoRA runs share one copy of the base model and are decoded in one batch; a full "
                "fine-tune is decoded after it. Single-turn: each Send starts afresh.")
    with gr.Row():
        models = model_names()
        base = gr.Dropdown(label="base model", choices=models, value=default_base(models), allow_custom_value=True,
                           scale=1, elem_id="wb-chat-base")
        keys = gr.Dropdown(label=f"columns (up to {MAX_COLUMNS}): the bare base and finished runs",
                           choices=column_choices(), value=[BASE_VALUE], multiselect=True,
                           max_choices=MAX_COLUMNS, scale=3, elem_id="wb-chat-columns")
    with gr.Accordion("System prompt and sampling", open=False, elem_id="wb-chat-sampling"):
        system = setting(Sampling, "system", label="system prompt", lines=2, placeholder="(none)")
        with gr.Row():
            max_tokens = setting(Sampling, "max_new_tokens", label="max new tokens", elem_id="wb-chat-max-tokens")
            temperature = setting(Sampling, "temperature", step=0.05, label="temperature (0: greedy)",
                                  elem_id="wb-chat-temperature")
            top_p = setting(Sampling, "top_p", step=0.05, label="top-p")
            seed = setting(Sampling, "seed", label="seed")
    prompt = gr.Textbox(label="prompt", lines=3, placeholder="Table users(id, name, age). Names of users over 30.",
                        elem_id="wb-chat-prompt")
    with gr.Row():
        send_btn = gr.Button("Send", variant="primary")
        stop_btn = gr.Button("Stop", variant="stop")
        clear_btn = gr.Button("Clear")
    message = gr.Markdown()
    slots = {}
    with gr.Row(equal_height=True):
        for i in range(MAX_COLUMNS):
            with gr.Column(visible=i == 0, min_width=220) as slots[slot("box", i)]:
                slots[slot("answer", i)] = gr.Textbox(label=BASE_LABEL if i == 0 else "", lines=14, max_lines=40,
                                                      interactive=False, buttons=["copy"], elem_classes=["wb-log"])
                slots[slot("stats", i)] = gr.Markdown()

    layout = {name: c for name, c in slots.items() if not name.startswith("stats")}  # boxes and answers
    gr.on([keys.change, base.change], inputs=[keys, base], **by_name(show_columns, layout), show_progress="hidden")
    # preprocess=False: a run finished after this page was built is not among the dropdown's
    # choices for an API client (which gets no page load); send checks every name itself.
    asked = gr.on([send_btn.click, prompt.submit],
                  inputs=[base, keys, prompt, system, max_tokens, temperature, top_p, seed],
                  **by_name(send, {"message": message, **slots}), api_name="chat", show_progress="hidden",
                  preprocess=False)
    stop_btn.click(stop, None, None, api_visibility="private")
    clear_btn.click(inputs=[keys, base], **by_name(clear, {"prompt": prompt, "message": message, **slots}),
                    cancels=[asked], api_visibility="private")
    pickers = {"base": base, "columns": keys}
    # the picks live in the browser (localStorage) too: a reload or a server restart keeps the columns
    picked = gr.BrowserState({}, storage_key="workbench-chat-picks")
    gr.on([keys.input, base.input], lambda b, k: {"base": b, "columns": k}, [base, keys], picked,
          show_progress="hidden", api_visibility="private")
    return Tab({"base": base, "columns": keys, "prompt": prompt, "message": message, "slots": slots},
               on_load=[Event(inputs=[picked], **by_name(restore, pickers))],
               on_select=Event(inputs=[base, keys], **by_name(refresh, pickers)))
