"""`workbench data` (engine.cli): the Datasets tab from a terminal. ``check`` detects a file's layout, maps its
columns and validates every row; ``register`` does the same and then writes the registry entry
(the Datasets tab's write); ``list`` prints the registry. Exit status 1 when a file has errors."""

from __future__ import annotations

import json
from pathlib import Path

from engine.config import DataConfig, ModelConfig
from engine.data import check as dc
from engine.data import intake, layouts
from engine.data.registry import dataset_folder, read_registry, registry_path
from engine.data.rows import row_kind


def _tokenizer(model: str, template: str):
    """(tokenizer or None, why not): like the Datasets tab, a missing model skips token counts only."""
    from engine.models.loader import load_tokenizer

    try:
        return load_tokenizer(model, template), ""
    except (OSError, ValueError) as e:
        return None, f"token counts not checked: {e}"


def report_lines(checked: intake.Intake) -> list[str]:
    """What the check found, errors first, as plain lines."""
    report, lines = checked.report, []
    lines += [f"error: {p}" for p in report.problems]
    lines += [f"error: row {n}: {m}" for n, m in report.row_errors]
    if report.error_rows > len(report.row_errors):
        lines.append(f"error: ... {report.error_rows - len(report.row_errors)} more rows with errors")
    if report.identical:
        lines.append(f"error: identical chosen and rejected answers in rows {dc.listed(report.identical)}")
    if report.contradictory:
        lines.append("warning: the same prompt with the answers swapped in rows "
                     + dc.listed([f"{a} & {b}" for a, b in report.contradictory]))
    if report.swapped:
        lines.append(f"warning: the rejected answer scores higher in rows {dc.listed(report.swapped)}")
    lines += [f"{level}: {text}" for level, text in dc.label_findings(report)]
    if report.emptied:
        lines.append(f"warning: the prompt alone reaches cutoff_len {report.cutoff_len} (dropped in training) in "
                     f"rows {dc.listed(report.emptied)}")
    if report.truncated:
        lines.append(f"note: {len(report.truncated)} rows are longer than cutoff_len {report.cutoff_len}")
    for key, values in report.lengths.items():
        low, mid, high = dc.length_stats(values)
        lines.append(f"tokens {key}: min {low}, median {mid}, max {high}")
    return lines


def print_check(checked: intake.Intake, note: str) -> bool:
    found = checked.detection
    print(f"{checked.path}: {len(checked.rows)} rows, columns {', '.join(checked.rows.column_names)}")
    if found.layout:
        print(f"layout: {found.layout}")
        print("mapping: " + ", ".join(f"{role}={column}" for role, column in found.columns.items()))
        print(f"registry entry: {json.dumps(checked.entry, ensure_ascii=False)}")
    for line in report_lines(checked) + ([note] if note else []):
        print(line)
    print("ok: no errors" if checked.report.ok else "not ok: fix the errors above")
    return checked.report.ok


def _check(args) -> tuple[intake.Intake, bool]:
    tokenizer, note = _tokenizer(args.model, args.template)
    checked = intake.check_file(Path(args.file), args.dataset_dir, upload=not args.in_place, tokenizer=tokenizer,
                                cutoff_len=args.cutoff_len, token_rows=dc.TOKEN_CHECK_ROWS)
    return checked, print_check(checked, note)


def cmd_check(args) -> int:
    return 0 if _check(args)[1] else 1


def cmd_register(args) -> int:
    checked, ok = _check(args)
    if not ok:
        print("not registered: nothing was written")
        return 1
    name, entry = intake.register_file(checked, args.dataset_dir, args.name, copy=not args.in_place)
    folder = dataset_folder(args.dataset_dir)
    where = "reading it in place" if args.in_place else f"copied to {folder / entry['file_name']}"
    print(f"registered {name!r} in {registry_path(folder)}, {where}")
    return 0


def cmd_list(args) -> int:
    folder = dataset_folder(args.dataset_dir)
    registry = read_registry(folder)
    if not registry:
        print(f"no datasets registered in {registry_path(folder)}: try `workbench data register FILE`")
    for name, info in registry.items():
        missing = "" if (folder / str(info.get("file_name"))).exists() else "  (file missing)"
        print(f"{name:28} {layouts.display_format(info):24} {row_kind(info):9} {info.get('file_name')}{missing}")
    return 0


def add_parser(sub) -> None:
    d = sub.add_parser("data", help="check, register and list datasets (what the Datasets tab does)")
    actions = d.add_subparsers(dest="action", required=True)
    for action, func, text in (("check", cmd_check, "detect a file's layout, map it and check every row"),
                               ("register", cmd_register, "check a file, then register it in dataset_info.json")):
        a = actions.add_parser(action, help=text)
        a.add_argument("file", help="a json, jsonl, csv or parquet file")
        a.add_argument("--dataset-dir", default=DataConfig().dataset_dir,
                       help="the dataset folder, like the config's data.dataset_dir (default: %(default)s)")
        a.add_argument("--model", default=ModelConfig().name_or_path,
                       help="tokenizer for token counts (default: %(default)s)")
        a.add_argument("--template", default=ModelConfig().template,
                       help="chat template, like the config's model.template (default: %(default)s)")
        a.add_argument("--cutoff-len", type=int, default=DataConfig().cutoff_len,
                       help="data.cutoff_len for the truncation check (default: %(default)s)")
        a.add_argument("--in-place", action="store_true",
                       help="register the file where it is (by path) instead of copying it into the dataset folder")
        if action == "register":
            a.add_argument("--name", help="the dataset's name (default: the file's stem, made unique)")
        a.set_defaults(func=func)
    ls = actions.add_parser("list", help="the registered datasets")
    ls.add_argument("--dataset-dir", default=DataConfig().dataset_dir, help="the dataset folder (default: %(default)s)")
    ls.set_defaults(func=cmd_list)

