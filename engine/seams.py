"""Every reach into a library's private code, in one place (the developers' guide: "library internals
only through one door"). Nothing else in the workbench names a private attribute, method or module of
TRL, PEFT, transformers or bitsandbytes; tests/test_architecture.py fails on one used elsewhere.

Each seam below says which library and version it was checked against, why it exists, the public
alternative (if there is one) and how its presence is checked. ``check()`` runs when an engine starts
(engine.train): a seam a newer library no longer has is logged naming the library and its version, and
the library's own code path runs instead of the workbench's, never a crash. Seams marked ``speedup``
change only how fast a run is, never what it learns: ``training.speedups: false`` (and, for chat,
WORKBENCH_SPEEDUPS=off) turns them all off, and TRL's and PEFT's own code paths run
(tests/engine/test_seams.py trains both ways and compares the losses).

The functions at the end are the seams themselves; the stage code calls them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

SPEEDUPS_ENV = "WORKBENCH_SPEEDUPS"  # on|off: the switch for processes that are not a run (chat, evaluation)


@dataclass(frozen=True)
class Seam:
    library: str
    checked: str  # the version the seam was written and tested against (pinned in pyproject.toml)
    touches: str  # the private names, as the library spells them
    reason: str
    public: str  # the public alternative, or why there is none
    speedup: bool  # off with training.speedups: false
    present: Callable[[], bool]


def attribute(module: str, *path: str) -> Callable[[], bool]:
    """A check that ``module`` has the attribute chain ``path`` (a class's method, a function)."""
    def found() -> bool:
        try:
            obj = importlib.import_module(module)
            for name in path:
                obj = getattr(obj, name)
        except (ImportError, AttributeError):
            return False
        return True
    return found


def method(module: str, cls: str, name: str, *params: str) -> Callable[[], bool]:
    """A check that ``module.cls`` still has method ``name`` taking ``params`` (an override must match)."""
    def found() -> bool:
        if not attribute(module, cls, name)():
            return False
        signature = inspect.signature(getattr(getattr(importlib.import_module(module), cls), name))
        return list(signature.parameters)[1:] == list(params)
    return found


def sets(module: str, cls: str, *names: str) -> Callable[[], bool]:
    """A check that ``module.cls``'s constructor still sets these attributes of its own."""
    def found() -> bool:
        if not attribute(module, cls, "__init__")():
            return False
        source = inspect.getsource(getattr(importlib.import_module(module), cls).__init__)
        return all(f"self.{name} =" in source for name in names)
    return found


def attn_attribute() -> bool:
    from transformers import PretrainedConfig

    return isinstance(getattr(PretrainedConfig, "_attn_implementation", None), property)


SEAMS = {
    "labelled_positions": Seam(
        "trl", "1.16.0", "trl.trainer.utils._use_triton",
        "TRL's fused LM head projects only the labelled positions through the vocabulary where Triton runs, and "
        "every position elsewhere (for Neuron's fixed shapes); on a CPU the labelled ones alone give the same "
        "log-probs with a sixth less work per DPO step (score_labelled_positions_only)",
        "none: the choice is a private function of TRL's", True, attribute("trl.trainer.utils", "_use_triton")),
    "reference_pass": Seam(
        "trl", "1.16.0", "DPOTrainer._precompute_ref_logps(dataset, name, batch_size)",
        "DPO's reference log-probs scored once through an on-disk cache shared by later runs, with the pairs "
        "packed (engine/stages/reference_cache.py), and in shares on several ranks (TRL's arrow file lands in "
        "one process's temporary folder)", "precompute_ref_log_probs=True: TRL's own pass, cached per process",
        True, method("trl", "DPOTrainer", "_precompute_ref_logps", "dataset", "name", "batch_size")),
    "packed_pairs": Seam(
        "transformers, trl", "5.23.0, 1.16.0",
        "PretrainedConfig._attn_implementation; the fused-LM-head forward TRL calls as model(input_ids, "
        "attention_mask, labels, fused_lm_head=True) on [chosen rows; rejected rows]",
        "each DPO pair scored as one packed segment, its prompt encoded once (engine/stages/shared_prompt.py); a "
        "batch in another layout falls back to TRL's forward by itself", "none: the mask kind is private",
        True, lambda: attn_attribute() and attribute("trl.trainer.utils", "add_fused_lm_head")()),
    "dpo_loss_term": Seam(
        "trl", "1.16.0", "DPOTrainer._compute_loss(model, inputs, return_outputs), DPOTrainer._metrics",
        "DPOP's term added to TRL's loss, and logged beside TRL's metrics (engine/stages/dpo_losses.py)",
        "none: TRL's loss loop is closed", False,
        lambda: method("trl", "DPOTrainer", "_compute_loss", "model", "inputs", "return_outputs")()
        and sets("trl", "DPOTrainer", "_metrics")()),
    "zero_reference_engine": Seam(
        "trl", "1.16.0", "DPOTrainer._precompute_engine",
        "DeepSpeed's inference engine TRL builds once for the reference pass, reused by the ranks' shared pass",
        "none", False, sets("trl", "DPOTrainer", "_precompute_engine")),
    "quantised_training_path": Seam(
        "bitsandbytes", "0.50.2", "Linear4bit.support_avx512bf16_for_cpu, Linear8bitLt.training on a CPU",
        "a quantised base computes one way in every mode: 4-bit layers never repack for an inference kernel "
        "without a backward (the gradients to the adapters were lost), 8-bit layers score DPO's reference as "
        "they train (engine/models/loader.py)", "none", False,
        lambda: sets("bitsandbytes.nn", "Linear4bit", "support_avx512bf16_for_cpu")()
        and attribute("bitsandbytes.nn", "Linear8bitLt")()),
    "packed_adapters": Seam(
        "peft", "0.21.2", "LoraLayer.lora_A / lora_B / scaling / lora_variant / lora_bias / lora_embedding_A, "
        "BaseTunerLayer.get_base_layer, peft.utils.other.AuxiliaryTrainingWrapper",
        "chat decodes every column's adapter in two batched matmuls per layer (engine/inference/multi_lora.py)",
        "peft's mixed-adapter batch, generate(adapter_names=[...])", True,
        attribute("peft.tuners.lora.layer", "Linear", "get_base_layer")),
}


def installed(library: str) -> str:
    try:
        return version(library)
    except PackageNotFoundError:
        return "not installed"


@functools.cache
def missing(name: str) -> str | None:
    """Why a seam cannot be used here (in words naming the library, its version and what runs
    instead), or None when it is there. Checked once per process (missing.cache_clear() checks again)."""
    seam = SEAMS[name]
    if seam.present():
        return None
    libraries = ", ".join(f"{lib.strip()} {installed(lib.strip())}" for lib in seam.library.split(","))
    fallback = f"the library's own path runs instead ({seam.public})" if seam.speedup else \
        f"what needs it cannot run ({seam.public})"
    return f"{libraries} no longer has {seam.touches} (checked against {seam.library} {seam.checked}): {fallback}"


def check() -> list[str]:
    """Every seam that is gone, in words (see missing); [] when all are there."""
    return [problem for name in SEAMS if (problem := missing(name))]


def usable(name: str, speedups: bool = True) -> bool:
    """A seam the run may use: it is there, and it is not a speed-up the run turned off."""
    return (speedups or not SEAMS[name].speedup) and missing(name) is None


def speedups_default() -> bool:
    """For processes that are not a run (chat, evaluation): WORKBENCH_SPEEDUPS=off turns them off."""
    value = os.environ.get(SPEEDUPS_ENV, "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"{SPEEDUPS_ENV}={value!r}: use on or off")
    return value == "on"


def describe(speedups: bool) -> str:
    """Which code paths a run takes, for its log."""
    if not speedups:
        return "speed-ups off (training.speedups: false): TRL's and PEFT's own code paths"
    used = [name for name, seam in SEAMS.items() if seam.speedup and usable(name)]
    return f"speed-ups on ({', '.join(used) or 'none usable'}; training.speedups: false turns them off)"


# ---- the seams ------------------------------------------------------------------------------------

def score_labelled_positions_only(on: bool = True) -> bool:
    """labelled_positions: TRL's fused LM head scores only the labelled positions on a CPU too (on), or
    as TRL does (off). Process-wide and idempotent; returns whether the workbench's path is in place.

    TRL's fused LM head (DPO's log-probabilities, SFT's loss on the answer tokens) projects only the
    labelled positions through the vocabulary where Triton runs; elsewhere it scores every position,
    prompt and padding included, and masks afterwards, because on Neuron a varying number of positions
    would recompile its kernels. A CPU compiles nothing, and the LM head (49k x 576 for SmolLM2) is a
    sixth of a DPO step there: scoring only the labelled positions gives the same log-probabilities for
    less work (README "Performance")."""
    if on and not usable("labelled_positions"):
        return False
    import trl.trainer.utils as trl_utils

    current = getattr(trl_utils, "_use_triton", None)
    original = getattr(current, "original", current)
    if not on:
        if original is not None:
            trl_utils._use_triton = original
        return False
    if current is not original:
        return True

    def compact(device) -> bool:  # read by the fused forward only; the kernels keep their own
        return device.type == "cpu" or original(device)

    compact.original = original
    trl_utils._use_triton = compact
    return True


def attention_kind(config) -> str | None:
    """packed_pairs: the attention kernel a transformers config selects (sdpa, eager, ...)."""
    return getattr(config, "_attn_implementation", None)


def with_reference_pass(trainer_class: type, hook: Callable) -> type:
    """reference_pass: ``trainer_class`` (a DPOTrainer) whose reference pass is
    ``hook(trainer, dataset, name, batch_size, compute)``, ``compute(dataset)`` being TRL's own pass.
    TRL calls it inside its constructor, before the first forward. Where the seam is gone, the class
    as it is."""
    if missing("reference_pass"):
        return trainer_class

    class Trainer(trainer_class):
        def _precompute_ref_logps(self, dataset, name: str, batch_size: int):
            compute = functools.partial(super()._precompute_ref_logps, name=name, batch_size=batch_size)
            return hook(self, dataset, name, batch_size, compute)

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer


def with_loss_term(trainer_class: type, hook: Callable) -> type:
    """dpo_loss_term: ``trainer_class`` (a DPOTrainer) whose loss is ``hook(trainer, model, inputs,
    compute)``, ``compute()`` being TRL's loss (a tensor); TRL's extra outputs, when asked for, pass
    through. Raises naming TRL's version where the seam is gone (there is no path without it)."""
    problem = missing("dpo_loss_term")
    if problem:
        raise RuntimeError(problem)

    class Trainer(trainer_class):
        def _compute_loss(self, model, inputs, return_outputs):
            parent = super()._compute_loss
            if not return_outputs:
                return hook(self, model, inputs, lambda: parent(model, inputs, False))
            found = {}

            def compute():
                found["loss"], found["outputs"] = parent(model, inputs, True)
                return found["loss"]

            loss = hook(self, model, inputs, compute)
            return loss, found["outputs"]

    Trainer.__name__ = Trainer.__qualname__ = trainer_class.__name__
    return Trainer


def log_metric(trainer, name: str, value: float) -> None:
    """dpo_loss_term: one value of a metric TRL logs (averaged over the logging interval) with its own."""
    mode = "train" if trainer.model.training else "eval"
    trainer._metrics[mode][name].append(value)


def reference_engine(trainer):
    """zero_reference_engine: DeepSpeed's inference engine for the reference pass, built once per trainer
    as TRL builds it."""
    from trl.models import prepare_deepspeed

    if trainer._precompute_engine is None:
        trainer._precompute_engine = prepare_deepspeed(trainer.model, trainer.accelerator)
    return trainer._precompute_engine


def timing_reference_pass(wrap: Callable) -> None:
    """reference_pass, for `workbench bench` only: TRL's reference pass wrapped process-wide (its timer)."""
    from trl import DPOTrainer

    DPOTrainer._precompute_ref_logps = wrap(DPOTrainer._precompute_ref_logps)


def quantised_layers_as_trained(model):
    """quantised_training_path: bitsandbytes' layers of ``model`` compute the same way in every mode.

    4-bit: on a CPU with AVX-512 BF16, a Linear4bit that sees one forward in eval mode without gradients
    (DPO's reference scoring, sample answers, evaluation) repacks its weight in place for a fast
    inference kernel (``gemv_4bit``) and uses that kernel from then on, in training too; it has no
    backward, so the gradients that flow through the frozen base layers to the adapters below them
    are silently dropped (bitsandbytes 0.50: "an autograd kernel was not registered"). Measured on
    SmolLM2 DPO: 1.5x the tokens/s of LoRA and a tenth of its reward margin after 12 steps.

    8-bit: on a CPU, a Linear8bitLt multiplies int8-quantised activations in eval mode but the
    dequantised weights in training mode, so DPO's reference (scored in eval mode) and the untrained
    policy disagreed: SmolLM2 DPO started at loss 0.658, not log 2 = 0.693. The layers stay on the
    training path (the more exact one: only the weights are quantised), whatever the model's mode."""
    import torch

    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
        if type(module).__name__ == "Linear8bitLt" and not torch.cuda.is_available():
            module.training = True
            module.train = types.MethodType(lambda self, mode=True: self, module)  # eval() leaves it as it is
    return model


@dataclass
class LoraWeights:
    """One adapted linear of a PeftModel: its base layer, and each adapter's (A, B, scaling) or None."""

    name: str
    base: object
    adapters: list[tuple | None]


def plain_lora_layers(peft_model, adapters: list[str]) -> list[LoraWeights] | None:
    """packed_adapters: every LoRA-wrapped layer of a PeftModel with each of ``adapters``' weights, or None
    when some layer is not plain LoRA on a linear (DoRA and other variants, LoRA bias, trained
    embeddings, modules_to_save): peft's own mixed batch handles those."""
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper
    from torch import nn

    model = peft_model.base_model.model
    tuned = [(name, m) for name, m in model.named_modules()
             if isinstance(m, (BaseTunerLayer, AuxiliaryTrainingWrapper))]

    def plain(layer) -> bool:
        return (isinstance(layer, LoraLinear) and not layer.merged and not layer.lora_variant
                and not any(layer.lora_bias.values()) and not layer.lora_embedding_A
                and all(type(m) is nn.Linear for m in (*layer.lora_A.values(), *layer.lora_B.values())))

    if not tuned or not all(plain(m) for _, m in tuned):
        return None
    return [LoraWeights(name, layer.get_base_layer(),
                        [(layer.lora_A[a].weight.detach(), layer.lora_B[a].weight.detach(), float(layer.scaling[a]))
                         if a in layer.lora_A else None for a in adapters])
            for name, layer in tuned]


def hookless_linear(module) -> bool:
    """packed_adapters: a plain torch Linear with no hooks and no patched forward (accelerate's offloading
    patches it), which may be called as its function (torch's hook dicts are private)."""
    from torch import nn

    return (type(module) is nn.Linear and "forward" not in vars(module)
            and not module._forward_hooks and not module._forward_pre_hooks)
