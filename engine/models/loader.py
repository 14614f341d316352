"""Every model the workbench builds, and the one module that loads weights from disk.

A run stands on weights through ``init_from``. A LoRA run that continues a LoRA parent keeps
training the parent's adapter, so every run's adapter applies directly to one base model (no
adapter stacks to replay when chatting or exporting); a run whose parent is a full fine-tune uses
the parent's whole model as its base. From that one rule:

    training_model(cfg)    the model a stage trains: base (+ parent) wrapped for LoRA, QLoRA or full
    scoring_backbone(cfg)  the same as a one-output scorer, for training a reward model
    reward_model(run)      a finished reward-model run, frozen, as a scorer
    merged_model(run)      a run's weights merged into its base (inference and export)
    inference_model(...)   a base model or a run, merged, on the inference device, with its tokenizer
    causal_lm, with_adapters, tokenizer_files, load_tokenizer, run_tokenizer: the pieces

``Weights.full`` tells a LoRA run from a full fine-tune; the dtype rule (``compute_dtype``),
quantisation and the same-base check live here too. torch, transformers and peft are imported
inside the functions, so the web UI may import this module for the lineage helpers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine import seams
from engine.config import ConfigError, RunConfig, stage_of
from engine.config.templates import TEMPLATE_CHOICES, TEMPLATES
from engine.models.store import resolve_model
from engine.runs.folder import RunFolder, Weights, resolve_run

if TYPE_CHECKING:
    import torch

log = logging.getLogger("engine")


def compute_dtype(name: str = "auto") -> torch.dtype:
    """Resolve a config's dtype. `auto` on a CPU: bf16 only where this machine's bf16 matrix
    products measured fast enough to pay for what bf16 changes (engine.models.cpu_dtype)."""
    return dtype_and_reason(name)[0]


def dtype_and_reason(name: str = "auto") -> tuple[torch.dtype, str]:
    """(compute_dtype(name), why: for a run's log)."""
    import torch

    if name != "auto":
        return getattr(torch, name), "model.dtype"
    if torch.cuda.is_available():
        return (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16), "model.dtype auto on this GPU"
    from engine.models.cpu_dtype import cpu_dtype_and_reason

    dtype, why = cpu_dtype_and_reason()
    return dtype, f"model.dtype auto: {why}"


def run_dtype(cfg: RunConfig) -> torch.dtype:
    """What a run's weights compute in, said in its log with the reason."""
    dtype, why = dtype_and_reason(cfg.model.dtype)
    log.info("computing in %s (%s)", str(dtype).removeprefix("torch."), why)
    return dtype


def inference_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


QUANTISED_BASES = {"qlora-4bit": "4-bit (nf4)", "qlora-8bit": "8-bit"}  # finetuning_type: how the base is held


def quantization(cfg: RunConfig):
    """bitsandbytes settings for QLoRA (None otherwise); bitsandbytes >= 0.46 also runs on CPU."""
    kind = cfg.model.finetuning_type
    if kind not in QUANTISED_BASES:
        return None
    from transformers import BitsAndBytesConfig

    if kind == "qlora-8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype(cfg.model.dtype))


# ---- lineage: which weights a run stands on ----------------------------------------------------

def run_weights(run: RunFolder) -> Weights:
    """The run's final weights; a clear error while it has none."""
    weights = run.weights()
    if weights is None:
        raise FileNotFoundError(f"run {run.name} has no saved adapter or model yet")
    return weights


def _find_parent(init_from: str) -> RunFolder:
    """init_from as recorded: a run folder's path (maybe relative to another working directory,
    or from before the saves folder moved) or a name; the error names what was recorded."""
    try:
        return resolve_run(init_from)
    except FileNotFoundError as recorded:
        try:
            return resolve_run(Path(init_from).name)
        except FileNotFoundError:
            raise recorded from None


def parent_run(cfg: RunConfig) -> RunFolder | None:
    """The init_from run folder, checked to have finished weights that write answers."""
    if not cfg.init_from:
        return None
    try:
        parent = _find_parent(cfg.init_from)
    except FileNotFoundError as e:
        raise ConfigError(f"init_from: {e}") from None
    if parent.weights() is None:
        raise ConfigError(f"init_from: run {parent.name} has no saved adapter or model (state: "
                          f"{parent.status().shown}); pick a completed or stopped run")
    stage = stage_of(parent.config().stage)
    if not stage.writes_answers:
        raise ConfigError(f"init_from: {parent.name} is {stage.a_run} (a reward model), which scores answers but "
                          "does not write them; start from a run whose weights answer, e.g. an SFT run (PPO takes "
                          "the reward model as ppo.reward_run)")
    return parent


def finished_run(arg: str, name: str | Path | RunFolder, stages: tuple[str, ...] = (), want: str = "") -> RunFolder:
    """A run folder with saved weights (of one of the stages, if given), for a setting or argument
    that names a run (ppo.reward_run, --compare ...); the errors name that setting."""
    try:
        run = resolve_run(name)
    except FileNotFoundError as e:
        raise ConfigError(f"{arg}: {e}") from None
    stage = run.config().stage
    if stages and stage not in stages:
        raise ConfigError(f"{arg}: run {run.name} is {stage_of(stage).a_run}; pick {want}")
    if run.weights() is None:
        raise ConfigError(f"{arg}: run {run.name} has no saved adapter or model yet; pick a finished run")
    return run


def base_model_path(cfg: RunConfig) -> Path:
    """The base weights a run's adapter applies to: its config's model or, up the init_from chain,
    the first full fine-tune's model."""
    parent = parent_run(cfg)
    if parent is None:
        return resolve_model(cfg.model.name_or_path)
    weights = parent.weights()
    return weights.path if weights.full else base_model_path(parent.config())


def run_base_model(run: RunFolder) -> Path:
    """base_model_path of a run folder's config, absolute (chat compares it with a picked base)."""
    return base_model_path(run.config()).resolve()


def check_same_model(cfg: RunConfig, parent: RunFolder) -> None:
    """A child run trains on its parent's model, in its parent's chat format."""
    parent_cfg = parent.config().model
    if resolve_model(parent_cfg.name_or_path) != resolve_model(cfg.model.name_or_path):
        raise ConfigError(f"model.name_or_path: {cfg.model.name_or_path!r} differs from the parent run's "
                          f"{parent_cfg.name_or_path!r}; an adapter only fits the model it was trained on")
    if parent_cfg.template != cfg.model.template:
        raise ConfigError(f"model.template: {cfg.model.template!r} differs from the parent run's "
                          f"{parent_cfg.template!r}; the parent learned its turns in that format")


# ---- tokenizers --------------------------------------------------------------------------------

def tokenizer_files(path: str | Path, **kwargs):
    """A folder's tokenizer as saved, with a pad token (batches are padded)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(model: str | Path, template: str = "model"):
    """The tokenizer a run trains with: its base model's, with the chosen chat template
    (engine.config.templates, apply_template) and a pad token."""
    return apply_template(tokenizer_files(resolve_model(str(model))), template)


def run_tokenizer(weights: Weights):
    """The tokenizer saved beside a run's weights: it carries the chat template (and turn-end eos
    token) the run trained with."""
    return tokenizer_files(weights.path)


def stop_token_ids(lm, *tokenizers) -> list[int]:
    """Every id that ends a turn: the model's generation eos ids plus each tokenizer's eos (a chat
    template may end turns with its own token, e.g. <|im_end|>)."""
    ids = lm.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    for tokenizer in tokenizers:
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
            ids.append(tokenizer.eos_token_id)
    return ids


# ---- models ------------------------------------------------------------------------------------

def safe_weights(path: str | Path, **kwargs) -> dict:
    """from_pretrained's ``use_safetensors`` for a model folder: True where it holds safetensors, so
    a pickled .bin beside them is never read; a folder with only .bin weights loads them (transformers
    guards with torch's weights_only), with a warning saying so."""
    folder = Path(path)
    if "gguf_file" in kwargs or not folder.is_dir():
        return {}
    if any(folder.glob("*.safetensors")):
        return {"use_safetensors": True}
    if any(folder.glob("*.bin")):
        log.warning("%s holds only pickled .bin weights (a pickle can run code when it is loaded; transformers "
                    "guards with torch's weights_only): convert the model to safetensors", folder)
    return {}


def causal_lm(path: str | Path, dtype=None, **kwargs):
    """A causal LM from a model folder (dtype None: as saved)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **safe_weights(path, **kwargs), **kwargs)


def load_gguf(folder: Path, file_name: str, dtype):
    """(model, tokenizer) dequantised from a GGUF file (engine.models.fetch converts SmolLM2 so)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    return causal_lm(folder, dtype, gguf_file=file_name), tokenizer


def with_adapters(lm, adapters: dict[str, Path], trainable: bool = False):
    """``lm`` with each LoRA adapter attached under its name (a PeftModel; the first is active)."""
    from peft import PeftModel

    for i, (name, path) in enumerate(adapters.items()):
        if i == 0:
            lm = PeftModel.from_pretrained(lm, path, adapter_name=name, is_trainable=trainable)
        else:
            lm.load_adapter(path, adapter_name=name, is_trainable=trainable)
    return lm


def merged(lm, adapter: Path, task_less: bool = False):
    """``lm`` with a LoRA adapter merged in. ``task_less``: an adapter trained on a causal LM applied
    to a scorer (the module names agree; only the task differs)."""
    from peft import PeftConfig, PeftModel

    config = PeftConfig.from_pretrained(adapter)
    if task_less:
        config.task_type = None
    return PeftModel.from_pretrained(lm, adapter, config=config).merge_and_unload()


def save_trained(model, out: Path, tokenizer, full: bool) -> Path:
    """The trained weights where they go: the whole model (full), else the LoRA adapter alone (TRL's
    DPO trainer keeps the frozen reference as an extra "ref" adapter; only ours is the result)."""
    if full:
        model.save_pretrained(out)
    else:
        model.save_pretrained(out, selected_adapters=["default"])
    tokenizer.save_pretrained(out)
    return out


def training_model(cfg: RunConfig):
    """(model, base path): what a stage trains, the base (+ parent weights) wrapped for LoRA or full.

    For LoRA the model is a PeftModel whose trainable adapter is either fresh or the parent's; with
    a parent adapter, TRL's DPO trainer keeps a frozen copy of it as the reference, so the reference
    is the parent (SFT) model, not the bare base.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    parent = parent_run(cfg)
    if parent is not None:
        check_same_model(cfg, parent)
    set_seed(cfg.training.seed)  # a new adapter's initial weights are drawn here, before the trainer seeds
    base_path = base_model_path(cfg)
    quantized = quantization(cfg)
    model = causal_lm(base_path, run_dtype(cfg), quantization_config=quantized)
    if quantized is not None:  # casts norms to fp32 and enables input grads for the frozen quantised base
        model = prepare_model_for_kbit_training(seams.quantised_layers_as_trained(model),
                                                cfg.training.gradient_checkpointing)
    weights = parent.weights() if parent else None
    parent_adapter = weights.path if weights is not None and not weights.full else None
    if cfg.model.finetuning_type == "full":
        # peft freezes the base for adapter training; a full fine-tune trains all of it
        return (merged(model, parent_adapter).requires_grad_(True) if parent_adapter else model), base_path
    if parent_adapter is not None:
        log.info("continuing the adapter of %s (its LoRA shape wins over the lora section)", parent.name)
        return with_adapters(model, {"default": parent_adapter}, trainable=True), base_path
    lora = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=lora_targets(cfg), task_type="CAUSAL_LM")
    return get_peft_model(model, lora), base_path


def lora_targets(cfg: RunConfig) -> str | list[str]:
    if cfg.lora.target == "all-linear":
        return "all-linear"
    return [t.strip() for t in cfg.lora.target.split(",") if t.strip()]


def scoring_backbone(cfg: RunConfig):
    """(sequence-classification model with one output, base path) for a reward-model config: the
    base, with a LoRA parent's adapter merged in. The score head is new (randomly initialised)."""
    from transformers import AutoModelForSequenceClassification

    parent = parent_run(cfg)
    if parent is not None:
        check_same_model(cfg, parent)
    base_path = base_model_path(cfg)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_path, num_labels=1, dtype=run_dtype(cfg), quantization_config=quantization(cfg),
        **safe_weights(base_path))
    seams.quantised_layers_as_trained(model)
    weights = parent.weights() if parent else None
    if weights is not None and not weights.full:
        model = merged(model, weights.path, task_less=True)
    return model, base_path


def reward_model(run: RunFolder, device: str | None = None):
    """(frozen reward model, its tokenizer) from a finished reward-model run, adapter merged for speed."""
    from transformers import AutoModelForSequenceClassification

    weights = run_weights(run)
    if weights.full:
        model = AutoModelForSequenceClassification.from_pretrained(weights.path, dtype=compute_dtype(),
                                                                   **safe_weights(weights.path))
    else:
        model = merged(scoring_backbone(run.config())[0], weights.path)
    tokenizer = run_tokenizer(weights)
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return model.to(device or inference_device()).eval().requires_grad_(False), tokenizer


def merged_model(run: RunFolder, dtype="auto"):
    """(a run's complete causal LM, the base it stands on): a full fine-tune as saved, a LoRA run's
    adapter merged into its base. dtype "auto" keeps the saved dtype (export writes it as it was).
    The base loads without quantisation whatever the run trained on: a QLoRA adapter is merged into
    the full-precision weights, not into bitsandbytes' rounded copy of them."""
    weights = run_weights(run)
    if weights.full:
        return causal_lm(weights.path, dtype), weights.path
    base = run_base_model(run)
    return merged(causal_lm(base, dtype), weights.path), base


def inference_model(model: str | Path | None = None, run: RunFolder | str | Path | None = None):
    """(model on the inference device in eval mode, tokenizer) for a base model name or path, or
    for a run (its weights merged into its base; its own tokenizer)."""
    if run is None:
        lm, tokenizer = causal_lm(resolve_model(str(model)), compute_dtype()), load_tokenizer(model)
    else:
        run = resolve_run(run)
        (lm, _base), tokenizer = merged_model(run, compute_dtype()), run_tokenizer(run_weights(run))
    return lm.to(inference_device()).eval(), tokenizer


def apply_template(tokenizer, name: str):
    """Give ``tokenizer`` the named chat template (in place) and make its turn end the eos token."""
    if name == "model":
        if not tokenizer.chat_template:
            raise ConfigError("model.template: this model has no chat template of its own; "
                              f"pick one of {', '.join(TEMPLATES)}")
        return tokenizer
    if name not in TEMPLATES:
        raise ConfigError(f"model.template: {name!r} is not one of {', '.join(TEMPLATE_CHOICES)}")
    template, stop = TEMPLATES[name]
    if stop is not None:
        if stop not in tokenizer.get_vocab():
            raise ConfigError(f"model.template: {name} ends turns with {stop}, which is not a token of this "
                              f"model's vocabulary; pick 'model' or 'alpaca'")
        tokenizer.eos_token = stop
    tokenizer.chat_template = template
    return tokenizer
