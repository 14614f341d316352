"""The single source of truth for every setting: what a run, a chat or an evaluation accepts.

    fields.py    opt() (a default with its help and bounds) and the checker whose errors name the key
    sections.py  the sections every run shares (model, lora, data, training), Sampling, EvalConfig
    stages.py    the stage table: each stage's options, data, role, metrics and charts
    run.py       RunConfig (a run's whole config) and its YAML form

Everything is importable from ``engine.config``.
"""

from engine.config.fields import ConfigError, opt
from engine.config.run import (
    TOP_LEVEL,
    RunConfig,
    apply_overrides,
    dump_yaml,
    from_dict,
    load_yaml,
    read_yaml,
    to_dict,
)
from engine.config.sections import (
    MAX_NEW_TOKENS,
    SECTIONS,
    DataConfig,
    DistributedConfig,
    EvalConfig,
    LoraConfig,
    ModelConfig,
    SamplesConfig,
    Sampling,
    TrainingConfig,
)
from engine.config.stages import (
    BASE_POLICY,
    PAIRED_LOSSES,
    REFERENCE_FREE_LOSSES,
    STAGES,
    Chart,
    DPOOptions,
    PPOOptions,
    RMOptions,
    SFTOptions,
    Stage,
    policy_stages,
    reward_model_stages,
    stage_of,
)

__all__ = [
    "ConfigError", "opt", "TOP_LEVEL", "RunConfig", "apply_overrides", "dump_yaml", "from_dict", "load_yaml", "read_yaml",
    "to_dict", "MAX_NEW_TOKENS", "SECTIONS", "DataConfig", "EvalConfig", "LoraConfig", "ModelConfig", "Sampling",
    "TrainingConfig", "SamplesConfig", "DistributedConfig", "BASE_POLICY", "PAIRED_LOSSES", "REFERENCE_FREE_LOSSES", "STAGES", "Chart", "DPOOptions",
    "PPOOptions", "RMOptions", "SFTOptions", "Stage", "policy_stages", "reward_model_stages", "stage_of",
]
