"""The Datasets tab's task probes: declare, on a registered dataset, what an aligned answer looks like
(engine.data.probes: starts with, contains, matches a regular expression, line counts ...), without
code. Evaluation, `workbench eval` and the Train tab's sample answers report each probe's alignment
accuracy on that dataset."""

from __future__ import annotations

import html

import gradio as gr

from engine.data.probes import COUNT_KINDS, KINDS, parse_probes
from engine.data.registry import DatasetError, dataset_folder, read_registry, set_probe
from webui import access
from webui.named import by_name

REFUSED = (DatasetError, access.OutsideAllowedFolders)  # shown in the section's message
HELP = ("A probe holds when the answer passes its condition: matches / not_matches (a regular expression), "
        "starts_with, contains / not_contains (text), min_lines / max_lines (non-empty lines), max_chars. "
        "Alignment accuracy: the share of answers that pass and are not degenerate (empty or looping).")


def probes_markdown(dataset_dir: str | None, name: str | None) -> str:
    """The probes a registered dataset declares, one line each."""
    if not name:
        return ""
    try:
        info = read_registry(dataset_folder(access.confine_dataset_dir(dataset_dir))).get(name)
    except REFUSED as e:
        return f"❌ {e}"
    if info is None:
        return ""
    probes = parse_probes(info.get("probes"))
    if not probes:
        return f"**{name}** declares no task probe yet."
    lines = [f"- **{n}**: " + ", ".join(f"{kind} `{html.escape(str(v))}`" for kind, v in p.conditions)
             for n, p in probes.items()]
    return f"**{name}** declares:\n" + "\n".join(lines)


def _value(kind: str, text: str):
    return int(text) if kind in COUNT_KINDS and text.strip().isdigit() else text


def declare(dataset_dir, name, probe, kind, value, version) -> dict:
    """{"message", "declared" (the probes, after a change), "version" (the registry's)} after declaring
    (or replacing) a probe."""
    probe, value = (probe or "").strip(), value or ""
    if not name or not probe or not kind or not value.strip():
        return {"message": "❌ Pick a dataset, then give the probe a name, a kind and a value.", "version": version}
    try:
        set_probe(dataset_folder(access.confine_dataset_dir(dataset_dir)), name, probe, {kind: _value(kind, value)})
    except REFUSED as e:
        return {"message": f"❌ Not declared: {e}", "version": version}
    return {"message": f"✅ Declared probe **{probe}** on **{name}**.", "declared": probes_markdown(dataset_dir, name),
            "version": version + 1}


def remove(dataset_dir, name, probe, version) -> dict:
    """{"message", "declared" (the probes, after a change), "version" (the registry's)} after removing a
    probe by name."""
    try:
        folder = dataset_folder(access.confine_dataset_dir(dataset_dir))
        declared = read_registry(folder).get(name or "", {}).get("probes") or {}
        if (probe or "").strip() not in declared:
            return {"message": f"❌ {name or 'the dataset'} declares no probe named {probe!r}.", "version": version}
        set_probe(folder, name, probe.strip(), None)
    except REFUSED as e:
        return {"message": f"❌ {e}", "version": version}
    return {"message": f"✅ Removed probe **{probe}** from **{name}**.", "declared": probes_markdown(dataset_dir, name),
            "version": version + 1}


def build(dataset_dir: gr.components.Component, picked: gr.components.Component, version: gr.State) -> None:
    """The probes section for the picked dataset, in the current Blocks context."""
    with gr.Accordion("Task probes of the picked dataset", open=False, elem_id="wb-dataset-probes"):
        gr.Markdown(HELP)
        declared = gr.Markdown(elem_id="wb-dataset-probes-declared")
        with gr.Row():
            probe = gr.Textbox(label="probe name", max_lines=1, elem_id="wb-probe-name")
            kind = gr.Dropdown(label="kind", choices=list(KINDS), value="starts_with", elem_id="wb-probe-kind")
            value = gr.Textbox(label="value", max_lines=1, elem_id="wb-probe-value",
                               info="text, a regular expression, or a number for the line and length kinds")
            declare_btn = gr.Button("Declare probe", scale=0)
            remove_btn = gr.Button("Remove probe", scale=0)
        message = gr.Markdown()
    gr.on([picked.change, dataset_dir.input], probes_markdown, [dataset_dir, picked], declared, show_progress="hidden")
    changed = {"message": message, "declared": declared, "version": version}
    declare_btn.click(inputs=[dataset_dir, picked, probe, kind, value, version], **by_name(declare, changed),
                      api_name="declare_probe")
    remove_btn.click(inputs=[dataset_dir, picked, probe, version], **by_name(remove, changed))

