"""A box showing the end of a log: read-only, monospaced, the newest line at the bottom and in view."""

from __future__ import annotations

import json

import gradio as gr

# Gradio 6.31's Textbox ignores its own `autoscroll`: its frontend reads the app-wide flag, which only an
# embedding page can set. So the box scrolls itself to its end whenever its text changes (after the
# browser has laid the new text out).
SCROLL_TO_END = """() => requestAnimationFrame(() => {
    const box = document.querySelector('#' + %s + ' textarea');
    if (box) box.scrollTop = box.scrollHeight;
})"""


def log_box(label: str, lines: int, elem_id: str) -> gr.Textbox:
    box = gr.Textbox(label=label, lines=lines, max_lines=lines, interactive=False, elem_id=elem_id,
                     elem_classes=["wb-log"])
    box.change(None, None, None, js=SCROLL_TO_END % json.dumps(elem_id), show_progress="hidden",
               api_visibility="private")
    return box
