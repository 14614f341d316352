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
from webui.forms import FieldSpec, all_specs, to_values, validate, with_none

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


def stage_changed(stage: str, dataset_dir: str, dataset: str, eval_dataset: str, init_from: str,
                  *run_picks: str) -> list:
    """Refilter the dataset pickers, default the parent run (and the runs the stage's options name,
    PPO's reward model: the newest of its stage), and show only this stage's options (and the
    samples settings only for a stage whose weights answer). ``run_picks``
    and the updates for them follow RUN_PICKERS' order."""
    names = dataset_choices(stage, dataset_dir)
    keep = dataset if dataset in names else (names[0] if names else "")
    parent = init_from or default_parent(stage)
    picks = dict(zip(RUN_PICKERS, run_picks))
    return [gr.update(choices=names, value=keep),
            gr.update(choices=with_none(names), value=eval_dataset if eval_dataset in names else ""),
            gr.update(choices=parent_choices(), value=parent),
            *[gr.update(choices=run_picker_choices(wanted), value=picks.get(key) or _latest(wanted))
              for key, wanted in RUN_PICKERS.items()],
            *[gr.update(visible=s == stage) for s in STAGES],
            gr.update(visible=STAGES[stage].writes_answers)]  # samples: a reward model writes no answers


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


def preview(specs: list[FieldSpec], *values: Any) -> tuple[Any, Any, str]:
    """(YAML, CLI command, error text) for the form; on a bad value the previews keep their last text.
    The start-time checks run too, so an unregistered dataset shows up while the form is filled."""
    try:
        cfg = preflight(validate(specs, list(values)))
    except ConfigError as e:
        return gr.skip(), gr.skip(), f"❌ {e}"
    return dump_yaml(cfg), cli_command(cfg), ""


def save_config(specs: list[FieldSpec], *values: Any) -> tuple[str, Any]:
    """Write the form's config to saves/configs/ (the YAML preview, byte for byte)."""
    try:
        cfg = preflight(validate(specs, list(values)))
    except ConfigError as e:
        return f"❌ {e}", gr.skip()
    path = saved_config_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dump_yaml(cfg))
    return (f"Saved **{shown_path(path)}**; from a terminal: `workbench train {shown_path(path)}`",
            gr.update(choices=saved_configs()))


def saved_configs() -> list[str]:
    folder = saves_root() / "configs"
    return sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_from_saved(specs: list[FieldSpec], name: str | None) -> list[Any]:
    if not name or "/" in name or "\\" in name:
        gr.Warning("pick a saved config")
        return [gr.skip()] * len(specs)
    return load_from_file(specs, str(saves_root() / "configs" / name))


def load_config(specs: list[FieldSpec], data: Any, source: str) -> list[Any]:
    """Form values for a config mapping; on an invalid config, a warning and no change."""
    try:
        if not isinstance(data, dict):
            raise ConfigError("the config must be a mapping of sections (model, lora, data, training, ...)")
        return to_values(specs, data)
    except ConfigError as e:
        gr.Warning(f"{source}: {e}")
        return [gr.skip()] * len(specs)


def load_from_run(specs: list[FieldSpec], name: str | None) -> list[Any]:
    try:
        data = read_yaml(runinfo.run_path(name).config_file)
    except (FileNotFoundError, ConfigError) as e:
        gr.Warning(str(e))
        return [gr.skip()] * len(specs)
    return load_config(specs, data, name)


def load_from_file(specs: list[FieldSpec], path: str | None) -> list[Any]:
    try:
        data = read_yaml(path) if path else None
    except (OSError, ConfigError) as e:
        gr.Warning(f"not a readable YAML file: {e}")
        return [gr.skip()] * len(specs)
    return load_config(specs, data, Path(path).name if path else "upload")
