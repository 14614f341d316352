"""The Datasets tab: list the registry, register a file (validated first), preview rows as the
model will see them, rename and remove entries.

Handlers are plain functions over the Train tab's values (dataset folder, model, chat template,
cutoff_len), so the tab always works on what training will use; engine.data.check does the checks,
webui.dataset_checks runs them on the form's values and webui.dataset_report renders what they found.
A file is copied into the dataset folder only when Register is clicked and validation passed; a
registration that fails leaves both the folder and dataset_info.json as they were.

By path: a file inside the dataset folder is registered by its path relative to it; a file
elsewhere by its absolute path, without copying (large files are not duplicated, but moving the
file breaks the entry). Uploads are copied in under a name no other file or entry uses.

Every dataset folder and file path the browser sends is checked by webui.access first (any HTTP
client can send any value): one outside the allowed folders is refused in the handler's message.
Removing an entry acts only on what Remove… asked about in the same session (a gr.State, kept on
the server), so a direct call of the confirm step removes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from engine.config.formats import ALPACA, DEFAULT_FORMAT, FORMATS, OFFERED, PROMPT_CHOSEN_REJECTED
from engine.data import intake
from engine.data import layouts as dc
from engine.data.reading import LOADERS, load_rows
from engine.data.registry import (
    REGISTRY_FILE,
    DatasetError,
    check_new_name,
    dataset_folder,
    read_registry,
    register_dataset,
    remove_dataset,
    rename_dataset,
)
from engine.data.rows import row_kind
from webui import access, dataset_probes
from webui import dataset_checks as checks
from webui.dataset_report import preview_html, report_markdown
from webui.named import by_name
from webui.tabs import Event, Page, Tab

HEADERS = ["name", "format", "rows", "file", "columns", "description"]
SOURCES = ("Upload a file", "A file on this machine")
NONE = ("(none)", "")          # a role's dropdown entry for "not in this file"
# The tab's events share this concurrency id, so Gradio runs them one at a time: they share one cached
# tokenizer per model (a Rust tokenizer used from two threads at once can fail: "Already borrowed"),
# and registry edits read, change and write the whole file (two at once could lose one of them).
ONE_AT_A_TIME = "datasets-tab"
REFUSED = (DatasetError, access.OutsideAllowedFolders)  # what a handler shows in its message


# ---- the registry table ---------------------------------------------------------------------


def _file_label(folder: Path, info: dict) -> str:
    name = info.get("file_name") or "?"
    return name if (folder / name).exists() else f"{name} (missing)"


def _columns_label(info: dict) -> str:
    """The mapping worth reading: required roles and anything off LLaMA-Factory's defaults (the
    defaults of optional roles, like system=system, apply only where the file has that column)."""
    _, required = dc.format_roles(dc.display_format(info), info["ranking"])
    cols, defaults = info["columns"], FORMATS[info["formatting"]].columns
    if info["formatting"] == ALPACA and not cols.get("chosen"):
        required = [*required, "response"]
    shown = {role: col for role, col in cols.items() if col and (role in required or defaults.get(role) != col)}
    return ", ".join(f"{role}={col}" for role, col in shown.items())


def registry_rows(dataset_dir: str | None) -> list[list[str]]:
    folder = dataset_folder(dataset_dir)
    return [[name, dc.display_format(info), row_kind(info), _file_label(folder, info),
             _columns_label(info), str(info.get("description", ""))] for name, info in read_registry(folder).items()]


def data_files(dataset_dir: str | None) -> list[tuple[str, str]]:
    """Data files in the dataset folder, labelled with the datasets already using them."""
    folder = dataset_folder(dataset_dir)
    try:
        users = {}
        for name, info in read_registry(folder).items():
            users.setdefault(info.get("file_name"), []).append(name)
    except DatasetError:
        users = {}
    files = sorted(p.name for p in folder.glob("*")
                   if p.suffix.lower() in LOADERS and not p.name.startswith(".") and p.name != REGISTRY_FILE)
    return [(f"{f} (used by {', '.join(users[f])})" if f in users else f, f) for f in files]


def refresh(dataset_dir: str | None, selected: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """The listing re-read from the folder: {"table", "picked" (the registered-dataset picker), "files"
    (the data file picker)}; ``selected`` (when given) becomes the picker's value. A folder outside the
    allowed ones lists nothing, with a warning unless ``quiet``."""
    try:
        dataset_dir = access.confine_dataset_dir(dataset_dir)
    except access.OutsideAllowedFolders as e:
        if not quiet:
            gr.Warning(str(e))
        return {"table": [], "picked": gr.update(choices=[], value=None), "files": gr.update(choices=[], value=None)}
    try:
        rows, names = registry_rows(dataset_dir), list(read_registry(dataset_folder(dataset_dir)))
    except DatasetError as e:
        gr.Warning(str(e))
        rows, names = [], []
    picker = gr.update(choices=names) if selected is None else gr.update(choices=names, value=selected or None)
    return {"table": rows, "picked": picker, "files": gr.update(choices=data_files(dataset_dir))}


def refresh_as_typed(dataset_dir: str | None) -> dict[str, Any]:
    """refresh() while the folder is typed: every keystroke sends the field, and the prefixes of an
    allowed path ("/", "/w", ...) are outside, so no warning here; Refresh and the Train tab's
    preview line say why an outside folder lists nothing."""
    return refresh(dataset_dir, quiet=True)


def on_load() -> dict[str, Any]:
    """refresh() for a page load: the dataset folder field then shows its default, which
    dataset_folder(None) resolves; later changes of the field refresh the tab themselves."""
    return refresh(None)


# ---- handlers: pick a file, change its format ---------------------------------------------


def role_key(role: str) -> str:
    """The name of a role's column dropdown in the answers of load_source and format_changed."""
    return f"column:{role}"


def _role_updates(columns: list[str], mapping: dict, formatting: str, ranking: bool) -> dict[str, Any]:
    used, _ = dc.format_roles(formatting, ranking)
    choices = [NONE, *((c, c) for c in columns)]
    return {role_key(role): gr.update(choices=choices, value=mapping.get(role) or "", visible=role in used)
            for role in dc.ROLES}


def _source_path(kind: str, upload: str | None, path: str | None, dataset_dir: str | None) -> Path | None:
    """The picked file, checked by webui.access (OutsideAllowedFolders); None when none is picked."""
    if kind == SOURCES[0]:
        return access.confine_upload(upload) if upload else None
    if not path:
        return None
    given = Path(path).expanduser()
    return access.confine(given if given.is_absolute() else dataset_folder(dataset_dir) / given)


def _load_message(source: dict, formatting: str, ranking: bool) -> str:
    """What was read and detected; once the user changes the format, says so instead of keeping a
    "Detected" line that no longer describes the form."""
    read = f"Read **{Path(source['path']).name}**: {source['rows']} rows, columns {', '.join(source['columns'])}."
    detected = source["detected"]
    if not detected["layout"]:
        return f"{read}\n\n❌ {detected['why']}\n\nMap the columns below by hand."
    if (formatting, bool(ranking)) != (detected["formatting"], detected["ranking"]):
        return (f"{read} Detected **{detected['layout']}**; you set the format to **{formatting}**"
                f"{' with ranking' if ranking else ''} by hand: check the mapping below.")
    return f"{read} Detected **{detected['layout']}**: columns mapped, see the check below."


def load_source(kind: str, upload: str | None, path: str | None, dataset_dir: str | None) -> dict[str, Any]:
    """Read the chosen file and fill the form with what detection found: {"source" (the state),
    "name", "formatting", "ranking", one role_key(role) per role, "message"}."""
    blank = {"source": None, **{role_key(role): gr.update(visible=False) for role in dc.ROLES}}
    try:
        dataset_dir = access.confine_dataset_dir(dataset_dir)
        source = _source_path(kind, upload, path, dataset_dir)
        if source is None:
            return {**blank, "message": ""}
        if not source.exists():
            raise DatasetError(f"{source} does not exist")
        rows = checks.rows_of(source)
    except (DatasetError, OSError) as e:
        return {**blank, "message": f"❌ {e}"}
    found = dc.detect(intake.sample(rows), rows.column_names)
    ranking = found.ranking or found.formatting == PROMPT_CHOSEN_REJECTED
    detected = {"layout": found.layout, "formatting": found.formatting, "ranking": ranking,
                "why": intake.not_detected(found, rows.column_names) if not found.layout else ""}
    state = {"path": str(source), "upload": kind == SOURCES[0], "columns": rows.column_names, "rows": len(rows),
             "detected": detected}
    return {"source": state, "name": intake.default_name(source.stem, dataset_dir), "formatting": found.formatting,
            "ranking": ranking, **_role_updates(rows.column_names, found.columns, found.formatting, found.ranking),
            "message": _load_message(state, found.formatting, ranking)}


def format_changed(source: dict | None, formatting: str, ranking: bool, *columns: str) -> dict[str, Any]:
    """{"ranking" (the checkbox), one role_key(role) per role dropdown, "message" (the load message, left
    as it is without a file)}: prompt-chosen-rejected is always ranking data."""
    fixed = formatting == PROMPT_CHOSEN_REJECTED
    ranking = ranking or fixed
    used, _ = dc.format_roles(formatting, ranking)
    answer = {"ranking": gr.update(value=ranking, interactive=not fixed),
              **{role_key(role): gr.update(visible=bool(source) and role in used) for role in dc.ROLES}}
    return {**answer, "message": _load_message(source, formatting, ranking)} if source else answer


# ---- handlers: check, register ---------------------------------------------------------------


NOTHING_CHECKED = {"report": "", "entry": "", "preview": ""}


def check(dataset_dir, model, template, cutoff_len, start, source, formatting, ranking, description,
          *columns) -> dict[str, str]:
    """{"report", "entry" (the registry entry, JSON), "preview"} for the form; nothing is written."""
    if not source:
        return NOTHING_CHECKED
    try:
        dataset_dir = access.confine_dataset_dir(dataset_dir)
        entry, problems = checks.draft_entry(source, dataset_dir, formatting, ranking, columns, description)
        report, note, tokenizer = checks.validate_draft(source, entry, problems, model, template, cutoff_len)
        shown = "" if problems else \
            checks.render_preview(checks.rows_of(source["path"]), entry, tokenizer, note, cutoff_len, start)
    except (DatasetError, OSError) as e:
        return {**NOTHING_CHECKED, "report": f"❌ {e}"}
    return {"report": report_markdown(report, note), "entry": json.dumps(entry, indent=2, ensure_ascii=False),
            "preview": shown}


def preview_only(dataset_dir, model, template, cutoff_len, start, source, formatting, ranking, description,
                 *columns) -> str:
    """The preview alone (the first-row number changed)."""
    if not source:
        return ""
    try:
        dataset_dir = access.confine_dataset_dir(dataset_dir)
        entry, problems = checks.draft_entry(source, dataset_dir, formatting, ranking, columns, description)
        if problems:
            return preview_html([], None, "fix the column mapping first")
        tokenizer, note = checks.tokenizer_for(model, template)
        return checks.render_preview(checks.rows_of(source["path"]), entry, tokenizer, note, cutoff_len, start)
    except (DatasetError, OSError) as e:
        return preview_html([], None, str(e))


def _listing(dataset_dir, version: int, bumped: bool, selected: str | None = None) -> dict[str, Any]:
    """refresh's listing and "version" (the registry version, bumped after an edit)."""
    return {**refresh(dataset_dir, selected), "version": (version or 0) + 1 if bumped else version}


def _unchanged(version: int) -> dict[str, Any]:
    """_listing's outputs left as they are (a refused folder: nothing to list)."""
    return {"version": version}


def register(dataset_dir, model, template, cutoff_len, version, name, source, formatting, ranking, description,
             *columns) -> dict[str, Any]:
    """Validate again (never trust an earlier check), then copy (uploads) and write the entry.
    Answers {"report", "message", refresh's listing, "version"}."""
    try:
        folder = dataset_folder(access.confine_dataset_dir(dataset_dir))
    except access.OutsideAllowedFolders as e:  # before anything is created there
        return {"message": f"❌ Not registered: {e}. Nothing was saved.", **_unchanged(version)}
    if not source:
        return {"report": "", "message": "❌ Upload a file or pick one first.", **_listing(dataset_dir, version, False)}
    try:
        name = check_new_name(name, read_registry(folder))
        entry, problems = checks.draft_entry(source, dataset_dir, formatting, ranking, columns, description)
        report, note, _ = checks.validate_draft(source, entry, problems, model, template, cutoff_len)
        if not report.ok:
            return {"report": report_markdown(report, note), "message": "❌ Not registered: fix the errors in the "
                    "report; nothing was saved.", **_listing(dataset_dir, version, False)}
        written = register_dataset(folder, name, entry, copy_from=source["path"] if source["upload"] else None)
    except (DatasetError, OSError) as e:
        return {"message": f"❌ Not registered: {e}. Nothing was saved.", **_listing(dataset_dir, version, False)}
    where = "copied to" if source["upload"] else "reading"
    message = (f"✅ Registered **{name}**: {report.rows} rows, {where} `{written['file_name']}`, in "
               f"`{folder / REGISTRY_FILE}`.")
    return {"report": report_markdown(report, note), "message": message, **_listing(dataset_dir, version, True, name)}


# ---- handlers: a registered dataset ----------------------------------------------------------


def inspect_registered(dataset_dir, model, template, cutoff_len, start, name) -> dict[str, str]:
    """{"report", "entry" (JSON), "preview"} of a registered dataset, checked like a new one."""
    if not name:
        return NOTHING_CHECKED
    try:
        folder = dataset_folder(access.confine_dataset_dir(dataset_dir))
        info = read_registry(folder).get(name)
        if info is None:
            return NOTHING_CHECKED
        rows = load_rows(info, folder)
    except REFUSED as e:
        return {**NOTHING_CHECKED, "report": f"❌ {e}"}
    tokenizer, note = checks.tokenizer_for(model, template)
    report = checks.validate_rows(rows, info, tokenizer, cutoff_len)
    entry = json.dumps({name: info}, indent=2, ensure_ascii=False)
    shown = checks.render_preview(rows, info, tokenizer, note, cutoff_len, start)
    return {"report": report_markdown(report, note), "entry": entry, "preview": shown}


def rename(dataset_dir, old, new, version) -> dict[str, Any]:
    """{"message", refresh's listing, "version"}."""
    try:
        dataset_dir = access.confine_dataset_dir(dataset_dir)
        new = rename_dataset(dataset_folder(dataset_dir), old or "", new)
    except access.OutsideAllowedFolders as e:
        return {"message": f"❌ Not renamed: {e}", **_unchanged(version)}
    except DatasetError as e:
        return {"message": f"❌ Not renamed: {e}", **_listing(dataset_dir, version, False)}
    return {"message": f"✅ Renamed **{old}** to **{new}**. Runs that used the old name keep it in their config.yaml.",
            **_listing(dataset_dir, version, True, new)}


def ask_remove(dataset_dir, name) -> dict[str, Any]:
    """First step of a removal: say what goes and what stays, show the confirm buttons, and keep
    what is pending (the folder and the name) for confirm_remove. Answers {"confirm_row", "message",
    "pending"}."""
    try:
        folder = access.confine_dataset_dir(dataset_dir)
        info = read_registry(dataset_folder(folder)).get(name or "")
    except REFUSED as e:
        return {"confirm_row": gr.update(visible=False), "message": f"❌ {e}", "pending": None}
    if info is None:
        return {"confirm_row": gr.update(visible=False), "message": "❌ Pick a registered dataset first.",
                "pending": None}
    return {"confirm_row": gr.update(visible=True),
            "message": f"Remove **{name}** from {REGISTRY_FILE}? Only the registry entry goes: its data file "
                       f"`{info.get('file_name')}` is kept on disk.",
            "pending": {"folder": folder, "name": name}}


def _unconfirmed(dataset_dir, name, pending: dict | None) -> str:
    """Why confirm_remove must not act ('' when it may): nothing asked in this session, or the
    dataset or folder picked now is not the one asked about."""
    if not pending:
        return "❌ Nothing to confirm: pick a dataset and press Remove… first."
    try:
        same_folder = access.confine_dataset_dir(dataset_dir) == pending["folder"]
    except access.OutsideAllowedFolders:
        same_folder = False
    if not same_folder or name != pending["name"]:
        return "❌ Nothing to confirm: the picked dataset changed since Remove… was pressed; press it again."
    return ""


def confirm_remove(dataset_dir, name, version, pending: dict | None = None) -> dict[str, Any]:
    """Remove what ask_remove asked about in this session (``pending``, a gr.State kept on the server,
    which an API call cannot set), if it is still the one picked. Answers {"confirm_row", "message",
    refresh's listing, "version", "pending"}; nothing is pending after it."""
    done = {"confirm_row": gr.update(visible=False), "pending": None}
    why_not = _unconfirmed(dataset_dir, name, pending)
    if why_not:
        return {**done, "message": why_not, **_unchanged(version)}
    folder = pending["folder"]
    try:
        info = remove_dataset(dataset_folder(folder), name)
    except DatasetError as e:
        return {**done, "message": f"❌ Not removed: {e}", **_listing(folder, version, False)}
    return {**done, "message": f"✅ Removed **{name}** from the registry; its file `{info.get('file_name')}` is still "
                               "on disk.", **_listing(folder, version, True, "")}


def cancel_remove() -> dict[str, Any]:
    """{"confirm_row", "message", "pending"}: nothing pending any more."""
    return {"confirm_row": gr.update(visible=False), "message": "", "pending": None}


# ---- layout -----------------------------------------------------------------------------------


def _manage_section(ctx: list) -> dict:
    with gr.Row():
        picked = gr.Dropdown(label="registered dataset: check, preview, rename or remove", choices=[], value=None,
                             scale=3)
        start = gr.Number(value=1, minimum=1, precision=0, label="preview from row", scale=1, min_width=120)
        new_name = gr.Textbox(label="new name", scale=2)
        rename_btn = gr.Button("Rename", scale=0)
        remove_btn = gr.Button("Remove…", variant="stop", scale=0)
    with gr.Row(visible=False) as confirm_row:
        confirm_btn = gr.Button("Yes, remove the entry (the file stays)", variant="stop")
        cancel_btn = gr.Button("Cancel")
    message = gr.Markdown()
    report = gr.Markdown()
    with gr.Accordion("registry entry", open=False):
        entry = gr.Code(language="json", interactive=False)
    preview = gr.HTML()
    # The Train form's fields (folder, model, template, cutoff) are followed as the user edits them
    # (.input): their .change also fires when a page load or Load settings fills the form, and these
    # listeners on it kept re-firing one another in Gradio 6, an endless loop that held the page at a
    # whole core after a reload during a run. Opening this tab re-reads it anyway.
    triggers = [picked.change, start.change] + [c.input for c in ctx[1:] if not isinstance(c, gr.State)]
    gr.on(triggers, inputs=[*ctx, start, picked],
          **by_name(inspect_registered, {"report": report, "entry": entry, "preview": preview}),
          trigger_mode="always_last", show_progress="minimal", concurrency_id=ONE_AT_A_TIME, api_name="inspect_dataset")
    return {"picked": picked, "new_name": new_name, "rename_btn": rename_btn, "remove_btn": remove_btn,
            "confirm_row": confirm_row, "confirm_btn": confirm_btn, "cancel_btn": cancel_btn, "message": message}


def _register_section() -> dict:
    c: dict[str, Any] = {}
    c["kind"] = gr.Radio(list(SOURCES), value=SOURCES[0], label="source", show_label=False)
    c["upload"] = gr.File(label="data file: json, jsonl, csv or parquet", file_types=list(LOADERS),
                          type="filepath", elem_id="wb-dataset-upload")
    c["path"] = gr.Dropdown(label="data file", choices=[], value=None, allow_custom_value=True, visible=False,
                            info="a file in the dataset folder, or type any path (absolute, or relative to the "
                                 "dataset folder); a file outside it is registered by absolute path, not copied")
    c["load_msg"] = gr.Markdown()
    with gr.Row():
        c["name"] = gr.Textbox(label="name", info="what configs use as data.dataset", elem_id="wb-dataset-name")
        c["formatting"] = gr.Radio(list(OFFERED), value=DEFAULT_FORMAT, label="formatting")
        c["ranking"] = gr.Checkbox(label="ranking", info="chosen/rejected pairs (needed for DPO)")
    with gr.Row():
        c["roles"] = [gr.Dropdown(label=f"{role} column", info=dc.ROLE_HELP[role], choices=[NONE], value="",
                                  visible=False, min_width=180, elem_id=f"wb-dataset-{role}") for role in dc.ROLES]
    c["description"] = gr.Textbox(label="description (optional)")
    with gr.Row(equal_height=True):
        c["check_btn"] = gr.Button("Check")
        c["register_btn"] = gr.Button("Register", variant="primary")
        c["start"] = gr.Number(value=1, minimum=1, precision=0, label="preview from row", scale=0, min_width=140)
    c["message"] = gr.Markdown()
    c["report"] = gr.Markdown()
    with gr.Accordion("registry entry to be written", open=False):
        c["entry"] = gr.Code(language="json", interactive=False)
    c["preview"] = gr.HTML()
    c["source"] = gr.State(None)
    return c


def show_source(kind: str) -> dict[str, Any]:
    """{"upload", "path"}: the upload box or the path picker, as the source kind says."""
    return {"upload": gr.update(visible=kind == SOURCES[0]), "path": gr.update(visible=kind != SOURCES[0])}


def _wire_register(c: dict, ctx: list, version: gr.State, listing: dict) -> None:
    draft = [c["source"], c["formatting"], c["ranking"], c["description"], *c["roles"]]  # check's inputs, by ROLES
    roles = {role_key(role): box for role, box in zip(dc.ROLES, c["roles"])}
    checked = by_name(check, {"report": c["report"], "entry": c["entry"], "preview": c["preview"]})
    check_inputs = [*ctx, c["start"], *draft]
    quiet = {"show_progress": "minimal", "concurrency_id": ONE_AT_A_TIME}
    c["kind"].change(inputs=c["kind"], **by_name(show_source, {"upload": c["upload"], "path": c["path"]}),
                     show_progress="hidden")
    # always_last: a file chosen while the Clear before it is still loading must load too (Gradio's
    # default, "once", drops an event that fires while the same one runs)
    loaded = {"source": c["source"], "name": c["name"], "formatting": c["formatting"], "ranking": c["ranking"],
              **roles, "message": c["load_msg"]}
    loading = gr.on([c["upload"].upload, c["upload"].clear, c["path"].change, c["kind"].change],
                    inputs=[c["kind"], c["upload"], c["path"], ctx[0]], **by_name(load_source, loaded),
                    api_name="load_dataset_file", trigger_mode="always_last")
    loading.then(inputs=check_inputs, **checked, **quiet)
    gr.on([c["upload"].upload, c["upload"].clear, c["path"].change], lambda: "", None, c["message"],
          api_visibility="private")  # an earlier "Registered ..." message is about another file
    reformatted = {"ranking": c["ranking"], **roles, "message": c["load_msg"]}
    gr.on([c["formatting"].input, c["ranking"].input], inputs=[c["source"], c["formatting"], c["ranking"], *c["roles"]],
          **by_name(format_changed, reformatted), show_progress="hidden").then(inputs=check_inputs, **checked, **quiet)
    context = [x.input for x in ctx[1:] if not isinstance(x, gr.State)]
    gr.on([c["check_btn"].click, *[r.input for r in c["roles"]], *context], inputs=check_inputs, **checked,
          trigger_mode="always_last", api_name="check_dataset", **quiet)
    c["start"].change(preview_only, check_inputs, c["preview"], **quiet)
    registered = {"report": c["report"], "message": c["message"], **listing, "version": version}
    c["register_btn"].click(inputs=[*ctx, version, c["name"], *draft], **by_name(register, registered),
                            api_name="register_dataset", concurrency_id=ONE_AT_A_TIME)


def build(page: Page) -> Tab:
    """The Datasets tab, wired to the Train tab's dataset folder and cutoff_len and the top bar's model
    and chat template, so checks and previews show what training will see.

    Its components include ``registry_version``: the page's gr.State (Page.registry_version), bumped
    after every register, rename and remove (the Train tab refilters its dataset pickers on its change).
    """
    dataset_dir, model = page.form["data.dataset_dir"], page.top["model.name_or_path"]
    template, cutoff_len = page.top["model.template"], page.form["data.cutoff_len"]
    ctx = [dataset_dir, model, template, cutoff_len]
    version = page.registry_version if page.registry_version is not None else gr.State(0)
    gr.Markdown("Datasets of the Train tab's dataset folder (`data.dataset_dir`). Checks and previews use the "
                "Train tab's model, chat template and `cutoff_len`, so they show what training will see.")
    with gr.Row():
        table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, label="registered datasets",
                             scale=5, column_widths=["16%", "12%", "8%", "19%", "25%", "20%"])  # one per header
        refresh_btn = gr.Button("Refresh", scale=0)
    manage = _manage_section(ctx)
    dataset_probes.build(dataset_dir, manage["picked"], version)
    with gr.Accordion("Register a dataset", open=True, elem_id="wb-dataset-register"):
        reg = _register_section()
    listing = {"table": table, "picked": manage["picked"], "files": reg["path"]}
    _wire_register(reg, ctx, version, listing)
    refresh_btn.click(inputs=dataset_dir, **by_name(refresh, listing), api_name="refresh_datasets")
    dataset_dir.input(inputs=dataset_dir, **by_name(refresh_as_typed, listing), show_progress="hidden")
    edited = {"message": manage["message"], **listing, "version": version}
    manage["rename_btn"].click(inputs=[dataset_dir, manage["picked"], manage["new_name"], version],
                               **by_name(rename, edited), api_name="rename_dataset", concurrency_id=ONE_AT_A_TIME)
    pending = gr.State(None)  # what Remove… asked about, on the server: the confirm step acts on it alone
    confirm = {"confirm_row": manage["confirm_row"], "message": manage["message"], "pending": pending}
    manage["remove_btn"].click(inputs=[dataset_dir, manage["picked"]], **by_name(ask_remove, confirm))
    manage["picked"].input(**by_name(cancel_remove, confirm))  # a pending "remove?" was about the previous pick
    manage["confirm_btn"].click(inputs=[dataset_dir, manage["picked"], version, pending],
                                **by_name(confirm_remove, {**confirm, **edited}), concurrency_id=ONE_AT_A_TIME)
    manage["cancel_btn"].click(**by_name(cancel_remove, confirm))
    return Tab({"table": table, "registry_version": version, **{f"manage_{k}": v for k, v in manage.items()}, **reg},
               on_load=[Event(**by_name(on_load, listing))],
               on_select=Event(inputs=[dataset_dir], **by_name(refresh, listing)))  # datasets registered elsewhere
