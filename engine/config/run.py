"""A run's whole config: ``stage``, ``name``, ``init_from``, the shared sections and the stage's
own section. The YAML in a run folder is ``to_dict`` of a ``RunConfig``; ``from_dict`` is the only
way back in, and it rejects unknown keys and bad values with a message that names the key
(``dpo.beta``), so a typo never trains silently with a default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.config.fields import ConfigError, build, coerce, opt
from engine.config.sections import (
    BACKENDS,
    SECTIONS,
    SHARDED_BACKENDS,
    DataConfig,
    DistributedConfig,
    LoraConfig,
    ModelConfig,
    SamplesConfig,
    TrainingConfig,
)
from engine.config.stages import BASE_POLICY, STAGES


@dataclass
class RunConfig:
    stage: str = opt(BASE_POLICY, "Training stage.", choices=list(STAGES))
    name: str = opt("run", "A short label for the run folder's name.")
    init_from: str | None = opt(
        None, "Parent run folder to start from (e.g. the SFT run a DPO run continues). Its adapter "
              "(or full model) is the starting point and, for DPO and PPO, the frozen reference model.",
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    stage_options: Any = None  # the stage's options (engine.config.stages); dumped under the stage's name

    def __post_init__(self) -> None:
        if self.stage_options is None and self.stage in STAGES:
            self.stage_options = STAGES[self.stage].options()


TOP_LEVEL = ("stage", "name", "init_from")


def from_dict(data: dict) -> RunConfig:
    """Validate a config mapping (as read from YAML) into a RunConfig."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of sections (model, lora, data, training, ...)")
    top_fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    stage = coerce("stage", data.get("stage", top_fields["stage"].default), top_fields["stage"], hints["stage"])
    allowed = set(TOP_LEVEL) | set(SECTIONS) | {stage}
    unknown = sorted(set(data) - allowed)
    if unknown:
        other_stage = " (settings of another stage)" if unknown[0] in STAGES else ""
        raise ConfigError(f"{unknown[0]}: unknown section{other_stage}; a {stage} config accepts "
                          f"{', '.join(sorted(allowed))}")
    top = {k: coerce(k, data[k], top_fields[k], hints[k]) for k in TOP_LEVEL if k in data}
    sections = {name: build(cls, data.get(name), name) for name, cls in SECTIONS.items()}
    stage_options = build(STAGES[stage].options, data.get(stage), stage)
    cfg = RunConfig(**top, **sections, stage_options=stage_options)
    check_distributed(cfg)
    if STAGES[stage].check is not None:
        STAGES[stage].check(cfg)
    return cfg


def check_distributed(cfg: RunConfig) -> None:
    """The distributed settings that cannot work on any machine (what this machine has is checked when
    the run is launched: engine.runs.launch.check_machine)."""
    d = cfg.distributed
    if d.backend == "none":
        for key in ("num_processes", "num_nodes"):
            if getattr(d, key) != 1:
                raise ConfigError(f"distributed.{key}: {getattr(d, key)} needs a distributed.backend "
                                  f"({', '.join(BACKENDS[1:-1])} or {BACKENDS[-1]}); none runs one process")
        return
    if d.node_rank >= d.num_nodes:
        raise ConfigError(f"distributed.node_rank: {d.node_rank} with {d.num_nodes} node(s); node ranks run from 0 "
                          f"to {d.num_nodes - 1}")
    why = STAGES[cfg.stage].single_process
    if why:
        raise ConfigError(f"distributed.backend: {cfg.stage} cannot run with {d.backend}: {why}. "
                          "Set distributed.backend to none")
    if d.backend in SHARDED_BACKENDS:
        if cfg.samples.count:
            raise ConfigError(f"samples.count: sample answers are written by rank 0 alone, and under {d.backend} "
                              "it holds only a shard of the weights; set samples.count to 0 (or use ddp)")
        if cfg.model.finetuning_type.startswith("qlora"):
            raise ConfigError(f"model.finetuning_type: {cfg.model.finetuning_type} keeps the base in bitsandbytes' "
                              f"packed form, which {d.backend} cannot shard here; use lora, or ddp")


def to_dict(cfg: RunConfig) -> dict:
    """The complete config as plain data: what config.yaml holds."""
    out: dict[str, Any] = {k: getattr(cfg, k) for k in TOP_LEVEL}
    for name in SECTIONS:
        out[name] = dataclasses.asdict(getattr(cfg, name))
    out[cfg.stage] = dataclasses.asdict(cfg.stage_options)
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` strings (values parsed as YAML scalars) to a config mapping."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. training.learning_rate=1e-4")
        value = yaml.safe_load(raw) if raw != "" else None
        path = key.strip().split(".")
        if len(path) == 1:
            data[path[0]] = value
        elif len(path) == 2:
            section = data.setdefault(path[0], {})
            if not isinstance(section, dict):
                raise ConfigError(f"{path[0]}: expected a mapping of settings")
            section[path[1]] = value
        else:
            raise ConfigError(f"{key}: keys have the form section.setting, e.g. dpo.beta")
    return data


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data; ConfigError naming the file when it is not UTF-8 text or not valid YAML
    (a missing file stays FileNotFoundError)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); save the file "
                          "with the UTF-8 encoding") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None


def load_yaml(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read, override and validate a YAML config file (None: start from the defaults)."""
    data = (read_yaml(path) or {}) if path is not None else {}
    return from_dict(apply_overrides(data, list(overrides)))


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
