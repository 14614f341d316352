"""The single source of truth for every run setting.

One dataclass per concern (model, LoRA, data, training) and one per stage. Each field's
metadata carries its help text and its bounds (``min``/``max``) or ``choices``; ``advanced``
marks fields a form may fold away. The YAML in a run folder is ``to_dict`` of a ``RunConfig``;
``from_dict`` is the only way back in, and it rejects unknown keys and bad values with a
message that names the key (``dpo.beta``), so a typo never trains silently with a default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.templates import TEMPLATE_CHOICES


class ConfigError(ValueError):
    """A setting is unknown or out of range; the message names the key and what is allowed."""


def opt(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its help text and bounds kept next to the default."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class ModelConfig:
    name_or_path: str = opt(
        "SmolLM2-135M-Instruct",
        "A local model name (see `workbench models`) or the path of any Hugging Face model folder.",
    )
    finetuning_type: str = opt(
        "lora", "lora: train a small adapter (fast, small files); qlora-4bit / qlora-8bit: the same on a "
                "base model quantised to 4 or 8 bits (bitsandbytes; less memory, slower steps); "
                "full: update every weight.",
        choices=["lora", "qlora-4bit", "qlora-8bit", "full"],
    )
    template: str = opt(
        "model", "Chat template: model = the model's own; chatml / llama3 / alpaca for models without one "
                 "or to train another format. Chat and export use the template the run trained with.",
        choices=TEMPLATE_CHOICES,
    )
    dtype: str = opt(
        "auto",
        "Compute dtype. auto: bfloat16 on GPUs and CPUs with bf16 matrix units (AMX), else float32.",
        choices=["auto", "bfloat16", "float16", "float32"], advanced=True,
    )


@dataclass
class LoraConfig:
    rank: int = opt(8, "LoRA rank r: adapter capacity.", min=1, max=256)
    alpha: int = opt(16, "LoRA alpha: the adapter's update is scaled by alpha / rank.", min=1, max=512)
    dropout: float = opt(0.0, "Dropout on the adapter's input (0 is fastest: on CPU, dropout cost ~18% of a LoRA step).",
                         min=0.0, max=0.9, advanced=True)
    target: str = opt(
        "all-linear",
        "Modules to adapt: all-linear, or comma-separated module names such as q_proj,v_proj.",
        advanced=True,
    )


@dataclass
class DataConfig:
    dataset: str = opt("sql_sft", "Training dataset: a name registered in dataset_info.json.")
    eval_dataset: str | None = opt(
        None, "Held-out dataset for evaluation (a registered name). Empty: split val_size off the training set.",
    )
    val_size: float = opt(
        0.0, "Used when eval_dataset is empty: fraction (< 1) or row count (>= 1) held out for eval.",
        min=0.0, max=100000.0, advanced=True,
    )
    max_samples: int | None = opt(None, "Use only the first N training rows (empty: all).", min=1)
    cutoff_len: int = opt(512, "Maximum tokens per example (prompt + answer); longer ones are truncated.",
                          min=16, max=131072)
    dataset_dir: str = opt("data", "Folder holding dataset_info.json and the data files.", advanced=True)


@dataclass
class TrainingConfig:
    num_train_epochs: float = opt(1.0, "Passes over the training set.", min=0.01, max=100.0)
    max_steps: int = opt(-1, "Stop after this many optimiser steps (-1: run all epochs).", min=-1)
    learning_rate: float = opt(2e-4, "Peak learning rate (LoRA likes ~1e-4; full fine-tuning ~1e-5).",
                               min=0.0, max=1.0)
    lr_scheduler_type: str = opt("cosine", "Learning-rate schedule after warm-up.",
                                 choices=["linear", "cosine", "constant", "constant_with_warmup"])
    warmup_ratio: float = opt(0.05, "Fraction of the steps spent warming the learning rate up.",
                              min=0.0, max=0.5, advanced=True)
    per_device_train_batch_size: int = opt(4, "Examples per forward pass.", min=1, max=1024)
    gradient_accumulation_steps: int = opt(2, "Forward passes per optimiser step.", min=1, max=1024)
    per_device_eval_batch_size: int = opt(8, "Examples per evaluation forward pass.", min=1, max=1024,
                                          advanced=True)
    weight_decay: float = opt(0.0, "AdamW weight decay.", min=0.0, max=1.0, advanced=True)
    max_grad_norm: float = opt(1.0, "Gradient clipping norm.", min=0.0, max=1000.0, advanced=True)
    logging_steps: int = opt(1, "Log metrics every N optimiser steps (each log is a point on the live charts; "
                                 "logging costs next to nothing beside a step).", min=1)
    eval_steps: int = opt(0, "Evaluate every N steps (0: only at the end).", min=0)
    save_steps: int = opt(0, "Save a checkpoint every N steps (0: only the final adapter).", min=0,
                          advanced=True)
    gradient_checkpointing: bool = opt(False, "Recompute activations in backward: less memory, ~30% slower.",
                                       advanced=True)
    seed: int = opt(42, "Random seed for data order and adapter initialisation.", min=0)


@dataclass
class SFTOptions:
    assistant_only_loss: bool = opt(
        False, "Train only on the answer tokens (needs a chat template with generation markers).",
    )
    completion_only_loss: bool = opt(
        True, "For prompt/completion data: do not train on the prompt tokens.", advanced=True,
    )


@dataclass
class RMOptions:
    center_rewards_coefficient: float = opt(
        0.0, "Weight of a penalty on the squared reward (keeps rewards centred on 0, so PPO's scores stay "
             "on one scale; 0.01 is the usual value).", min=0.0, max=1.0, advanced=True)


PAIRED_LOSSES = ["sigmoid", "ipo", "hinge", "robust", "dpop"]
REFERENCE_FREE_LOSSES = ["simpo", "orpo"]


@dataclass
class DPOOptions:
    loss_type: str = opt(
        "sigmoid",
        "Preference loss. sigmoid: the original DPO. ipo: squared loss, robust to overfitting. hinge: SLiC. "
        "robust: cDPO-style, for noisy labels (uses label_smoothing). dpop: DPO-Positive, penalises the chosen "
        "answer becoming less likely than under the reference (dpop_lambda). simpo / orpo: no reference model "
        "(faster, less memory). kto: unpaired good/bad examples; pairs are split into one of each.",
        choices=PAIRED_LOSSES + REFERENCE_FREE_LOSSES + ["kto"])
    beta: float = opt(0.1, "beta: lower lets the policy move further from the reference (bolder), higher keeps "
                           "it closer. IPO: its regulariser tau. SimPO: the reward scale (~2). ORPO: the weight "
                           "of the odds-ratio term (~0.1).", min=0.0, max=10.0)
    label_smoothing: float = opt(0.0, "Assumed fraction of flipped preference labels (robust / cDPO).",
                                 min=0.0, max=0.49, advanced=True)
    dpop_lambda: float = opt(50.0, "DPOP's lambda: weight of the penalty on the chosen log-ratio falling below "
                                   "the reference's (the DPOP paper uses 50).", min=0.0, max=1000.0)
    simpo_gamma: float = opt(0.5, "SimPO's target reward margin gamma: the loss is -log sigmoid(beta x (mean "
                                  "log-prob per token of chosen - of rejected) - gamma); the paper keeps "
                                  "gamma/beta near 0.5 (e.g. beta 2, gamma 1).", min=0.0, max=10.0, advanced=True)
    kto_desirable_weight: float = opt(1.0, "KTO: weight of the desirable (chosen) examples' loss.",
                                      min=0.0, max=10.0, advanced=True)
    kto_undesirable_weight: float = opt(1.0, "KTO: weight of the undesirable (rejected) examples' loss.",
                                        min=0.0, max=10.0, advanced=True)
    pref_ftx: float = opt(
        0.0, "Weight of an SFT term (mean NLL of the chosen answers) added to the preference loss. "
             "Keeps the chosen answers likely, so the policy cannot win the margin by degenerating. "
             "Not for orpo (its loss already holds an SFT term, weight 1) or kto (it has none).",
        min=0.0, max=10.0)


@dataclass
class PPOOptions:
    reward_run: str = opt("", "The reward model: a finished RM run folder. It scores each sampled answer.")
    rollout_batch_size: int = opt(
        16, "Prompts answered per PPO iteration (one training step). Each iteration's answers are then "
            "learned from in mini-batches of per_device_train_batch_size x gradient_accumulation_steps.",
        min=1, max=4096)
    ppo_epochs: int = opt(2, "Passes over each iteration's answers.", min=1, max=16)
    max_new_tokens: int = opt(64, "Longest sampled answer (tokens).", min=1, max=2048)
    temperature: float = opt(1.0, "Sampling temperature of the rollouts (1: the policy's own distribution).",
                             min=0.05, max=2.0, advanced=True)
    kl_coef: float = opt(0.05, "Weight of the per-token KL penalty to the reference (the SFT model): the "
                               "seeds' kl_coef. Higher keeps answers closer to the SFT model.", min=0.0, max=10.0)
    adaptive_kl: bool = opt(False, "Adapt kl_coef so the measured KL tracks kl_target (Ziegler et al.).")
    kl_target: float = opt(6.0, "Adaptive KL: the KL (nats per answer) to track.", min=0.01, max=100.0,
                           advanced=True)
    kl_horizon: int = opt(10000, "Adaptive KL: how many answers the coefficient takes to adapt.", min=1,
                          advanced=True)
    score_norm: bool = opt(True, "Normalise the reward model's scores with their running mean and std, so "
                                 "kl_coef means the same for any reward model.")
    whiten_rewards: bool = opt(False, "Also whiten the per-token rewards within each batch.", advanced=True)
    missing_eos_penalty: float = opt(
        1.0, "Subtracted from the score of answers cut off at max_new_tokens (discourages rambling).",
        min=0.0, max=100.0, advanced=True)
    gamma: float = opt(1.0, "GAE discount.", min=0.0, max=1.0, advanced=True)
    lam: float = opt(0.95, "GAE lambda: bias/variance trade-off of the advantages.", min=0.0, max=1.0,
                     advanced=True)
    cliprange: float = opt(0.2, "PPO clip range of the policy ratio.", min=0.01, max=1.0, advanced=True)
    cliprange_value: float = opt(0.2, "Clip range of the value predictions.", min=0.01, max=100.0, advanced=True)
    vf_coef: float = opt(0.1, "Weight of the value loss.", min=0.0, max=10.0, advanced=True)


@dataclass(frozen=True)
class EvalSettings:
    """How much `workbench eval` (engine.inference.evaluate) and the Evaluate tab generate; not part of a run's config."""

    prompts: int = opt(20, "Held-out prompts each model answers (greedy).", min=1, max=1000)
    max_new_tokens: int = opt(96, "Longest answer, in tokens.", min=1, max=1024)


@dataclass(frozen=True)
class Sampling:
    """How the Chat tab (engine.inference.chat) decodes; not part of a run's config."""

    system: str = opt("", "System prompt for every column (empty: none, or the template's own).")
    max_new_tokens: int = opt(256, "Most tokens an answer may have.", min=1, max=1024)
    temperature: float = opt(0.0, "Sampling temperature (0: greedy).", min=0.0, max=2.0)
    top_p: float = opt(1.0, "Nucleus sampling: keep the smallest token set with this probability mass.",
                       min=0.05, max=1.0)
    seed: int = opt(0, "Random seed; every column samples with it.", min=0)


# Workflow order: SFT first; RM and PPO are the RLHF chain, DPO (and its loss family) the simpler path.
STAGE_OPTIONS: dict[str, type] = {"sft": SFTOptions, "rm": RMOptions, "ppo": PPOOptions, "dpo": DPOOptions}
# Stages whose trainer needs chosen/rejected pairs ("ranking": true datasets); PPO only needs prompts.
PAIRED_DATA_STAGES = ("rm", "dpo")
# Stages whose weights write answers; a reward model only scores them (no chat, export or parent).
GENERATIVE_STAGES = ("sft", "ppo", "dpo")
SECTIONS: dict[str, type] = {
    "model": ModelConfig, "lora": LoraConfig, "data": DataConfig, "training": TrainingConfig,
}


@dataclass
class RunConfig:
    stage: str = opt("sft", "Training stage.", choices=list(STAGE_OPTIONS))
    name: str = opt("run", "A short label for the run folder's name.")
    init_from: str | None = opt(
        None, "Parent run folder to start from (e.g. the SFT run a DPO run continues). Its adapter "
              "(or full model) is the starting point and, for DPO and PPO, the frozen reference model.",
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    stage_options: Any = None  # the stage's *Options; dumped under the stage's name

    def __post_init__(self) -> None:
        if self.stage_options is None and self.stage in STAGE_OPTIONS:
            self.stage_options = STAGE_OPTIONS[self.stage]()


TOP_LEVEL = ("stage", "name", "init_from")


def _coerce(key: str, value: Any, f: dataclasses.Field, hint: Any) -> Any:
    """Check one value against its field's type, bounds and choices; return it coerced."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required ({f.metadata.get('help', '')})")
    try:
        if base is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                value = value.lower() in ("true", "yes", "1")
            elif not isinstance(value, bool):
                raise TypeError
        elif base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            value = int(value)
        elif base is float:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        elif base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError
            value = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {getattr(base, '__name__', base)}, got {value!r}") from None
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}: {value} is above the maximum {meta['max']}")
    return value


def _build(cls: type, values: dict | None, prefix: str) -> Any:
    """Instantiate a section dataclass from a mapping, naming any bad key as prefix.key."""
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a mapping of settings, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]}: unknown setting; {prefix} accepts {', '.join(fields)}")
    return cls(**{k: _coerce(f"{prefix}.{k}", v, fields[k], hints[k]) for k, v in values.items()})


def from_dict(data: dict) -> RunConfig:
    """Validate a config mapping (as read from YAML) into a RunConfig."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of sections (model, lora, data, training, ...)")
    top_fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    stage = _coerce("stage", data.get("stage", "sft"), top_fields["stage"], hints["stage"])
    allowed = set(TOP_LEVEL) | set(SECTIONS) | {stage}
    unknown = sorted(set(data) - allowed)
    if unknown:
        other_stage = " (settings of another stage)" if unknown[0] in STAGE_OPTIONS else ""
        raise ConfigError(f"{unknown[0]}: unknown section{other_stage}; a {stage} config accepts "
                          f"{', '.join(sorted(allowed))}")
    top = {k: _coerce(k, data[k], top_fields[k], hints[k]) for k in TOP_LEVEL if k in data}
    sections = {name: _build(cls, data.get(name), name) for name, cls in SECTIONS.items()}
    stage_options = _build(STAGE_OPTIONS[stage], data.get(stage), stage)
    cfg = RunConfig(**top, **sections, stage_options=stage_options)
    if stage == "dpo":
        check_dpo_options(cfg)
    return cfg


def check_dpo_options(cfg: RunConfig) -> None:
    """Settings a DPO-family loss cannot honour: refused when the config is read, so the CLI and the
    UI's preview name them before a run folder exists."""
    opts = cfg.stage_options
    loss = opts.loss_type
    if opts.pref_ftx and loss == "orpo":
        raise ConfigError("dpo.pref_ftx: ORPO's loss already holds an SFT term (the chosen answers' NLL, weight 1; "
                          "beta weights the odds-ratio term against it); set pref_ftx to 0")
    if opts.pref_ftx and loss == "kto":
        raise ConfigError("dpo.pref_ftx: TRL's KTO loss has no SFT term; set pref_ftx to 0")
    if opts.beta == 0 and loss != "orpo":  # ORPO with beta 0 is plain SFT on the chosen answers: allowed
        raise ConfigError(f"dpo.beta: the {loss} loss needs beta above 0 (it scales the preference margin; "
                          "at 0 the loss is constant or, for ipo and simpo, divides by zero)")
    if loss == "kto" and cfg.training.per_device_train_batch_size < 2:
        raise ConfigError("training.per_device_train_batch_size: KTO needs at least 2; it estimates its KL "
                          "baseline by pairing each prompt with another row's answer in the same batch")


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


def load_yaml(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read, override and validate a YAML config file (None: start from the defaults)."""
    data = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return from_dict(apply_overrides(data, list(overrides)))


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
