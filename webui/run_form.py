"""The run form: the Train tab's fields, generated from engine.config (webui.forms), with the
choices only the disk knows (models, registered datasets, parent runs), the checks made before a
run folder exists, the YAML and terminal-command previews, and saved configs.

Plain functions over form values and folders; the Train tab (webui.tabs.train) lays them out.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from engine.config import (
    SECTIONS,
    STAGES,
    TOP_LEVEL,
    ConfigError,
    DataConfig,
    RunConfig,
    dump_yaml,
    policy_stages,
    read_yaml,
    to_dict,
)
from engine.data.registry import DatasetError, dataset_folder, read_registry
from engine.data.rows import stage_can_train
from engine.files import atomic_write
from engine.models.store import model_names
from engine.paths import REPO_ROOT, runs_root, saves_root
from engine.runs import launch
from engine.runs.folder import RunFolder, latest_run, pin_parent, slug
from engine.runs.status import State
from webui import access, runinfo
from webui.form_answers import replacing, section_key
from webui.forms import FieldSpec, all_specs, validate, values_by_key, with_none

# Stage options that name a run (PPO's reward_run): form key -> the stage of the runs it offers.
RUN_PICKERS = {f"{s.name}.{option}": wanted for s in STAGES.values() for option, wanted in s.run_settings.items()}
# Runs a new run can start from: finished ones with saved weights, and ones still queued or running
# (the queue runs them first, so a DPO run can be queued right behind its SFT run).
PARENT_STATES = (State.COMPLETED, State.STOPPED, State.RUNNING, State.QUEUED)
NO_PARENT = ("(none: start from the base model)", "")


def dataset_choices(stage: str, dataset_dir: str | None) -> list[str]:
    """Registered datasets the stage can train on (its Stage.row_kinds: pairs for DPO and RM, ...).
    None from a folder outside the web UI's allowed ones, without a warning: this runs on every
    keystroke in the folder field, and the preview's error line names the refusal."""
    try:
        registry = read_registry(dataset_folder(access.confine_dataset_dir(dataset_dir)))
    except access.OutsideAllowedFolders:
        return []
    except DatasetError as e:
        gr.Warning(str(e))
        return []
    return [name for name, info in registry.items() if not stage_can_train(stage, info)]


def parent_choices() -> list[tuple[str, str]]:
    """Runs whose weights answer, to start from, labelled with their state; values are folder paths,
    as the CLI records them in config.yaml."""
    return [NO_PARENT] + [(f"{run.name} ({state})", str(run)) for run, state in runinfo.runs_in(PARENT_STATES)
                          if run.stage in policy_stages()]


def _latest(stage: str) -> str:
    latest = latest_run((stage,))
    return str(latest) if latest else ""


def default_parent(stage: str) -> str:
    """The newest completed run of the stage's parent stage (for RM, PPO and DPO an SFT run: PPO's
    and DPO's reference model)."""
    parent_stage = STAGES[stage].parent_stage
    return _latest(parent_stage) if parent_stage else ""


def run_picker_choices(wanted: str) -> list[tuple[str, str]]:
    """Finished runs of a stage for an option that names one (PPO's reward_run), labelled with their
    held-out result; values are folder paths, like init_from's."""
    return [(label, str(path)) for label, path in runinfo.labelled_runs((wanted,))]


def form_specs() -> list[FieldSpec]:
    """Every field of the form, with the choices only the disk knows filled in."""
    stage, dataset_dir = RunConfig().stage, DataConfig().dataset_dir
    datasets = dataset_choices(stage, dataset_dir)
    return all_specs({
        "model.name_or_path": {"choices": model_names(), "allow_custom_value": True},
        "data.dataset": {"choices": datasets, "allow_custom_value": True},
        "data.eval_dataset": {"choices": with_none(datasets), "allow_custom_value": True},
        "init_from": {"choices": parent_choices(), "allow_custom_value": True},
        **{key: {"choices": run_picker_choices(wanted), "allow_custom_value": True}
           for key, wanted in RUN_PICKERS.items()},
    })


# The form's own values a stage answer is made for (see stage_changed): the browser drops an answer
# for another stage or dataset folder than the form shows when it arrives (webui.form_answers).
ASKED = ("stage", "data.dataset_dir")
# The pickers a stage change refills, in the order of stage_changed's parameters after ASKED.
STAGE_PICKERS = ("data.dataset", "data.eval_dataset", "init_from", *RUN_PICKERS)


def stage_sections() -> tuple[str, ...]:
    """The sections a stage answer shows or hides: each stage's options, and the samples settings."""
    return (*STAGES, "samples")


def _picker(choices: list, shown: Any, wanted: Any) -> dict:
    """A picker's part of a stage answer: its new choices (as [label, value] pairs, as the browser holds
    them) and, only where the value it showed no longer fits, the value to put in its place (with the
    value it replaces: a picker the user has changed since keeps the user's)."""
    return {"choices": [list(c) if isinstance(c, tuple) else [c, c] for c in choices], **replacing(shown, wanted)}


def stage_changed(stage: str, dataset_dir: str, dataset: str, eval_dataset: str, init_from: str,
                  *run_picks: str) -> dict:
    """What a change of the stage, of the dataset folder or of the registry asks of the form: the
    dataset pickers refiltered, the parent run (and the runs the stage's options name, PPO's reward
    model: the newest of its stage) defaulted when none is picked, and only this stage's options shown
    (and the samples settings only for a stage whose weights answer). ``run_picks`` follow RUN_PICKERS.

    The answer is applied in the browser (webui.form_answers), where it may arrive after the user
    acted: it is dropped unless the form still shows the stage and dataset folder it was made for
    (``asked``), and a picker gets a value only where the one it showed did not fit and it still shows
    that one. Choosing a dataset while the answer travels can never be undone by it.
    """
    names = dataset_choices(stage, dataset_dir)
    picks = dict(zip(RUN_PICKERS, run_picks))
    updates = {
        "data.dataset": _picker(names, dataset, dataset if dataset in names else (names[0] if names else "")),
        "data.eval_dataset": _picker(with_none(names), eval_dataset, eval_dataset if eval_dataset in names else ""),
        "init_from": _picker(parent_choices(), init_from, init_from or default_parent(stage)),
        **{key: _picker(run_picker_choices(wanted), picks.get(key), picks.get(key) or _latest(wanted))
           for key, wanted in RUN_PICKERS.items()},
        **{section_key(s): {"visible": s == stage} for s in STAGES},
        section_key("samples"): {"visible": STAGES[stage].writes_answers},  # a reward model writes no answers
    }
    return {"asked": {"stage": stage, "data.dataset_dir": dataset_dir}, "updates": updates}


def _scalar(value: Any) -> str:
    """A value as `--set` parses it back (a YAML scalar); None is empty, which means None."""
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6)
    return text.removesuffix("\n").removesuffix("\n...")


def saved_config_path(cfg: RunConfig) -> Path:
    """Where Save config writes this config: saves/configs/<stage>-<name>.yaml."""
    return saves_root() / "configs" / f"{cfg.stage}-{slug(cfg.name)}.yaml"


def shown_path(path: Path) -> str:
    """A path as a user types it in the repository root (where `make run` starts the server)."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def cli_command(cfg: RunConfig) -> str:
    """Two terminal commands that train the same config: the saved file, or the defaults plus a
    `--set` for every value that differs from them; for a distributed run, also the launch command
    either one runs (engine.runs.launch)."""
    current, defaults = to_dict(cfg), to_dict(RunConfig(stage=cfg.stage))
    sets = [f"{k}={_scalar(current[k])}" for k in TOP_LEVEL if k == "stage" or current[k] != defaults[k]]
    for section in (*SECTIONS, cfg.stage):
        sets += [f"{section}.{k}={_scalar(v)}" for k, v in current[section].items() if v != defaults[section][k]]
    body = " \\\n  --set ".join(["workbench train", *map(shlex.quote, sets)])
    saved = shown_path(saved_config_path(cfg))
    text = (f"# after \"Save config\" (writes {saved}):\nworkbench train {shlex.quote(saved)}\n\n"
            f"# or without a file: the defaults, and each value that differs from them\n{body}")
    if cfg.distributed.backend != "none":
        folder = shown_path(runs_root() / "<run folder>")
        text += (f"\n\n# either starts {launch.total_processes(cfg)} processes through accelerate; this is the command, "
                 f"with {RunFolder(Path(folder)).accelerate_file.name} written into the new run folder:\n"
                 f"{launch.shown_command(cfg, folder)}")
    return text


def _confined(key: str, check, value: Any) -> None:
    """webui.access's check of a path the form sent, as a ConfigError naming the field."""
    try:
        check(value)
    except access.OutsideAllowedFolders as e:
        raise ConfigError(f"{key}: {e}") from None


def confine_runs(cfg: RunConfig, pinned: bool) -> None:
    """The runs init_from and the stage's options (PPO's reward_run) name must lie in the allowed
    folders: before pin_parent those given as paths (a name or latest:<stage> is looked up in the
    runs folder), after it every one (pin_parent has made each a folder)."""
    runs = {"init_from": cfg.init_from, **{f"{cfg.stage}.{option}": getattr(cfg.stage_options, option)
                                           for option in STAGES[cfg.stage].run_settings}}
    for key, value in runs.items():
        if value and (pinned or access.names_a_path(str(value))):
            _confined(key, access.confine, value)


def preflight(cfg: RunConfig) -> RunConfig:
    """Checks the engine would only make after start-up, made before a run folder exists: the
    datasets are registered and of the stage's kind, and the parent run is found. init_from is
    recorded as the parent's folder (as the CLI does), so config.yaml reproduces the run. Every
    path is checked against the allowed folders (webui.access) before anything is read from it."""
    _confined("data.dataset_dir", access.confine_dataset_dir, cfg.data.dataset_dir)
    _confined("model.name_or_path", access.confine_model, cfg.model.name_or_path)
    confine_runs(cfg, pinned=False)  # before pin_parent looks into the folders
    folder = dataset_folder(cfg.data.dataset_dir)
    try:
        registry = read_registry(folder)
    except DatasetError as e:
        raise ConfigError(f"data.dataset_dir: {e}") from None
    loss = getattr(cfg.stage_options, "loss_type", None)
    for key, value in (("data.dataset", cfg.data.dataset), ("data.eval_dataset", cfg.data.eval_dataset)):
        if value and value not in registry:
            raise ConfigError(f"{key}: {value!r} is not a registered dataset in {folder / 'dataset_info.json'}")
        why = stage_can_train(cfg.stage, registry[value], loss) if value else ""
        if why:
            raise ConfigError(f"{key}: {value!r} cannot train {cfg.stage}: {why}")
    cfg = pin_parent(cfg)
    confine_runs(cfg, pinned=True)
    launch.check_machine(cfg)
    return cfg


def preview(specs: list[FieldSpec], *values: Any) -> dict[str, Any]:
    """{"yaml", "command", "error"} for the form; on a bad value the previews keep their last text.
    The start-time checks run too, so an unregistered dataset shows up while the form is filled."""
    try:
        cfg = preflight(validate(specs, list(values)))
    except ConfigError as e:
        return {"error": f"❌ {e}"}
    return {"yaml": dump_yaml(cfg), "command": cli_command(cfg), "error": ""}


def save_config(specs: list[FieldSpec], *values: Any) -> dict[str, Any]:
    """Write the form's config to saves/configs/ (the YAML preview, byte for byte):
    {"message", "saved_configs" (the load-from-saved picker)}."""
    try:
        cfg = preflight(validate(specs, list(values)))
    except ConfigError as e:
        return {"message": f"❌ {e}"}
    path = saved_config_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dump_yaml(cfg))
    return {"message": f"Saved **{shown_path(path)}**; from a terminal: `workbench train {shown_path(path)}`",
            "saved_configs": gr.update(choices=saved_configs())}


def saved_configs() -> list[str]:
    folder = saves_root() / "configs"
    return sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []


# The load_from_* handlers answer {field key: value}; {} (a warning said why) leaves the form as it is.
def load_from_saved(specs: list[FieldSpec], name: str | None) -> dict[str, Any]:
    if not name or "/" in name or "\\" in name:
        gr.Warning("pick a saved config")
        return {}
    return load_from_file(specs, str(saves_root() / "configs" / name))


def load_config(specs: list[FieldSpec], data: Any, source: str) -> dict[str, Any]:
    """Form values for a config mapping, by field key; on an invalid config, a warning and no change."""
    try:
        if not isinstance(data, dict):
            raise ConfigError("the config must be a mapping of sections (model, lora, data, training, ...)")
        return values_by_key(specs, data)
    except ConfigError as e:
        gr.Warning(f"{source}: {e}")
        return {}


def load_from_run(specs: list[FieldSpec], name: str | None) -> dict[str, Any]:
    try:
        data = read_yaml(runinfo.run_path(name).config_file)
    except (FileNotFoundError, ConfigError) as e:
        gr.Warning(str(e))
        return {}
    return load_config(specs, data, name)


def load_from_file(specs: list[FieldSpec], path: str | None) -> dict[str, Any]:
    try:
        data = read_yaml(path) if path else None
    except (OSError, ConfigError) as e:
        gr.Warning(f"not a readable YAML file: {e}")
        return {}
    return load_config(specs, data, Path(path).name if path else "upload")
