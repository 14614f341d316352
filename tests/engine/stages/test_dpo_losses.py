"""The DPO loss family (engine.stages.dpo): every loss the trainer computes is checked against the
formula written out here, on log-probs from plain forward passes of the policy and of an
independently loaded reference; DPOP's penalty; the config rules; one short engine run per loss.

The unit tests start from a finished LoRA "SFT" run, so the reference is base + that adapter (as
in a real SFT -> DPO chain), then move the policy's adapter away from it: at the start the two
are equal and every loss would sit at its trivial value.
"""

from __future__ import annotations

import math
import os
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import Trainer

from engine.config import STAGES, ConfigError, from_dict
from engine.runs.folder import create_run
from tests.helpers import tiny_config

LOSSES = ["sigmoid", "ipo", "hinge", "robust", "dpop", "simpo", "orpo", "kto"]
BETA = 0.1
pytestmark = pytest.mark.usefixtures("float32_runs")  # the formulas are checked to 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small to gain from a second thread, and on a busy 2-core machine
    two spinning threads make each forward ~10x slower; engine runs (subprocesses) inherit it too."""
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="module")
def parent(tiny_model):
    """A finished LoRA SFT run, made in-process: its adapter has seeded random weights, B non-zero
    (training it would take seconds and prove nothing more here)."""
    from engine.models.loader import training_model

    cfg = from_dict(tiny_config("sft"))
    run_dir = create_run(cfg)
    model, _ = training_model(cfg)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * (0.05 if "lora_B" in name else 0.2))
    model.save_pretrained(run_dir.adapter_dir)
    run_dir.update_status(state="completed")
    return run_dir


@pytest.fixture(scope="module")
def reference(parent, saves):
    """The reference model built independently of any trainer: the base model + the parent adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(saves / "models" / "tiny")
    return PeftModel.from_pretrained(base, parent.adapter_dir).eval()


def build(parent, loss: str, model: dict | None = None, **dpo):
    """The real trainer of a loss on 4 pairs (one batch), starting from the parent run (or None: the base)."""
    from engine.stages import dpo as stage

    dpo = {"loss_type": loss, "beta": BETA, **dpo}
    cfg = from_dict(tiny_config("dpo", init_from=parent and str(parent), dpo=dpo, model=model or {},
                                data={"max_samples": 4}, training={"per_device_eval_batch_size": 4}))
    return stage.build_trainer(cfg, create_run(cfg), callbacks=[])


def first_batch(trainer) -> dict:
    return next(iter(trainer.get_eval_dataloader(trainer.train_dataset)))  # in dataset order


def perturb(model, seed: int = 0, scale: float = 0.02) -> None:
    """Move the trained weights off the reference (not TRL's frozen "ref" adapter copy)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and ".ref." not in name:
                p.add_(torch.randn(p.shape, generator=generator) * scale)


def trainer_loss(trainer, batch) -> torch.Tensor:
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch)


def logged(trainer) -> dict[str, float]:
    """The metrics TRL's DPO/KTO trainers keep for their next log line, as their log() writes them (the
    mean of what was kept since the last log, which log() then clears: call it once per check)."""
    captured = {}  # TRL's log() adds its buffered metrics, averaged, then hands them to Trainer.log
    with mock.patch.object(Trainer, "log", lambda self, logs, *args, **kwargs: captured.update(logs)):
        trainer.log({})
    return {key.removeprefix("eval_"): value for key, value in captured.items()}


def token_logps(model, input_ids, attention_mask, target_mask, grad: bool = False):
    """Log-prob of each next token from a plain forward (full logits, log_softmax), 0 outside target_mask."""
    with torch.set_grad_enabled(grad):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logps = logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return logps * target_mask[:, 1:], target_mask[:, 1:].float()


def answer_logps(model, batch, prefix: str = ""):
    """(sum, number of tokens) of each answer's log-probs; batches of TRL's DPO/KTO collators."""
    logps, mask = token_logps(model, batch[f"{prefix}input_ids"], batch[f"{prefix}attention_mask"],
                              batch[f"{prefix}completion_mask"])
    return logps.sum(-1), mask.sum(-1)


def pair_logps(policy, reference, batch):
    """Chosen/rejected sums for policy and reference, token counts; DPO batches are [chosen; rejected]."""
    logps, count = answer_logps(policy, batch)
    ref, _ = answer_logps(reference, batch)
    (c, r), (rc, rr), (nc, nr) = logps.chunk(2), ref.chunk(2), count.chunk(2)
    return c, r, rc, rr, nc, nr


def chosen_nll(policy, batch) -> torch.Tensor:
    """pref_ftx's SFT term: mean NLL over every chosen answer token of the batch."""
    logps, mask = token_logps(policy, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    half = logps.size(0) // 2
    return -logps[:half].sum() / mask[:half].sum()


def by_hand(loss: str, c, r, rc, rr, nc, nr, label_smoothing=0.0, dpop_lambda=0.0) -> torch.Tensor:
    """The DPO-family losses as the papers (and TRL's docs) define them, from summed log-probs."""
    delta = (c - rc) - (r - rr)
    if loss == "sigmoid":  # Rafailov et al. 2023
        per_pair = -F.logsigmoid(BETA * delta)
    elif loss == "hinge":  # SLiC
        per_pair = torch.relu(1 - BETA * delta)
    elif loss == "ipo":  # Azar et al. 2023, log-ratios averaged per answer token; beta is tau
        per_pair = ((c - rc) / nc - (r - rr) / nr - 1 / (2 * BETA)) ** 2
    elif loss == "robust":  # Chowdhury et al. 2024: unbiased under flipped labels with rate eps
        eps = label_smoothing
        per_pair = (-(1 - eps) * F.logsigmoid(BETA * delta) + eps * F.logsigmoid(-BETA * delta)) / (1 - 2 * eps)
    elif loss == "dpop":  # Pal et al. 2024
        penalty = torch.clamp(rc - c, min=0)
        per_pair = -F.logsigmoid(BETA * (delta - dpop_lambda * penalty))
    return per_pair.mean()


@pytest.mark.parametrize("loss, options", [
    ("sigmoid", {}), ("ipo", {}), ("hinge", {}), ("robust", {"label_smoothing": 0.1}),
    ("dpop", {"dpop_lambda": 5.0}), ("sigmoid", {"pref_ftx": 0.5}), ("dpop", {"dpop_lambda": 5.0, "pref_ftx": 0.5}),
])
def test_dpo_family_loss_matches_the_formula(parent, reference, loss, options):
    trainer = build(parent, loss, **options)
    perturb(trainer.model)
    batch = first_batch(trainer)
    c, r, rc, rr, nc, nr = pair_logps(trainer.model, reference, batch)
    assert (c - rc).abs().max() > 0.1  # the policy really differs from the reference
    expected = by_hand(loss, c, r, rc, rr, nc, nr, options.get("label_smoothing", 0.0), options.get("dpop_lambda", 0.0))
    expected = expected + options.get("pref_ftx", 0.0) * chosen_nll(trainer.model, batch)
    torch.testing.assert_close(trainer_loss(trainer, batch), expected, rtol=1e-4, atol=1e-5)
    assert logged(trainer)["rewards/margins"] == pytest.approx((BETA * ((c - rc) - (r - rr))).mean().item(), rel=1e-3)


def shift_log_probs(policy, input_ids, attention_mask, answer_mask, step: float) -> None:
    """One normalised gradient step on these answers' total log-prob: up (step > 0) or down."""
    logits = policy(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    token = logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    (token * answer_mask[:, 1:]).sum().backward()
    with torch.no_grad():
        for p in policy.parameters():
            if p.grad is not None:  # the trained weights only (TRL's "ref" adapter is frozen)
                p += step * p.grad / p.grad.norm()
                p.grad = None


def lower_the_chosen_answers(policy, batch, step: float) -> None:
    half = len(batch["input_ids"]) // 2  # DPO batches are [chosen; rejected]
    shift_log_probs(policy, *(batch[k][:half] for k in ("input_ids", "attention_mask", "completion_mask")), -step)


def gradient(model, loss) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])])


def test_dpop_penalty_is_zero_at_the_reference_and_positive_below_it(parent, reference):
    trainer = build(parent, "dpop", dpop_lambda=5.0)
    batch = first_batch(trainer)
    # Policy == reference (the SFT adapter continued): margin and penalty 0, loss log 2, and the
    # gradient is plain DPO's: max(0, x) has slope 0 at x = 0, so no penalty pull on a run's first step.
    loss = trainer.compute_loss(trainer.model, batch)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-5)
    assert logged(trainer)["dpop/penalty"] == pytest.approx(0, abs=1e-5)
    logps, _ = token_logps(trainer.model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"], grad=True)
    c, r = logps.sum(-1).chunk(2)
    _, _, rc, rr, _, _ = pair_logps(reference, reference, batch)
    dpo_loss = -F.logsigmoid(BETA * ((c - rc) - (r - rr))).mean()
    torch.testing.assert_close(gradient(trainer.model, loss), gradient(trainer.model, dpo_loss), rtol=1e-3, atol=1e-7)

    lower_the_chosen_answers(trainer.model, batch, step=0.05)
    c, r, rc, rr, nc, nr = pair_logps(trainer.model, reference, batch)
    assert (c < rc - 0.01).all()
    loss = trainer_loss(trainer, batch)
    assert logged(trainer)["dpop/penalty"] == pytest.approx((rc - c).mean().item(), rel=1e-3)
    torch.testing.assert_close(loss, by_hand("dpop", c, r, rc, rr, nc, nr, dpop_lambda=5.0), rtol=1e-4, atol=1e-5)
    # ... and the penalty pushes the loss above plain DPO's on the same log-probs
    assert loss > by_hand("sigmoid", c, r, rc, rr, nc, nr)


def test_dpop_with_full_fine_tuning_scores_the_reference_before_training(saves, tiny_model):
    """Full fine-tuning (here from the base model): the reference is the starting model, scored
    before the first step; no frozen copy is kept in memory."""
    from transformers import AutoModelForCausalLM

    trainer = build(None, "dpop", model={"name_or_path": "tiny", "finetuning_type": "full"}, dpop_lambda=5.0)
    batch = first_batch(trainer)
    assert trainer.ref_model is None and {"ref_chosen_logps", "ref_rejected_logps"} <= set(batch)
    lower_the_chosen_answers(trainer.model, batch, step=0.5)
    reference = AutoModelForCausalLM.from_pretrained(saves / "models" / "tiny").eval()
    c, r, rc, rr, nc, nr = pair_logps(trainer.model, reference, batch)
    assert (c < rc - 0.01).all()
    torch.testing.assert_close(trainer_loss(trainer, batch), by_hand("dpop", c, r, rc, rr, nc, nr, dpop_lambda=5.0),
                               rtol=1e-4, atol=1e-4)
    assert logged(trainer)["dpop/penalty"] == pytest.approx(torch.clamp(rc - c, min=0).mean().item(), rel=1e-3)


def cpo_answer_logps(policy, batch, side: str):
    """Mean log-prob per answer token (labels != -100) of CPO/ORPO's chosen_* / rejected_* tensors."""
    labels = batch[f"{side}_labels"]
    logps, mask = token_logps(policy, batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"], labels != -100)
    return logps.sum(-1) / mask.sum(-1)


@pytest.mark.parametrize("pref_ftx", [0.0, 0.5])
def test_simpo_loss_matches_the_formula(parent, pref_ftx):
    gamma = 0.3
    trainer = build(parent, "simpo", simpo_gamma=gamma, pref_ftx=pref_ftx)
    assert getattr(trainer, "ref_model", None) is None and "ref" not in trainer.model.peft_config  # reference-free
    perturb(trainer.model)
    batch = first_batch(trainer)
    c, r = cpo_answer_logps(trainer.model, batch, "chosen"), cpo_answer_logps(trainer.model, batch, "rejected")
    # Meng et al. 2024: -log sigmoid(beta * (mean log-prob of chosen - of rejected) - gamma)
    expected = -F.logsigmoid(BETA * (c - r) - gamma).mean()
    logps, mask = token_logps(trainer.model, batch["chosen_input_ids"], batch["chosen_attention_mask"],
                              batch["chosen_labels"] != -100)
    expected = expected + pref_ftx * -(logps.sum() / mask.sum())  # CPO's NLL of the chosen answer tokens
    torch.testing.assert_close(trainer_loss(trainer, batch), expected, rtol=1e-4, atol=1e-5)


def test_orpo_loss_matches_the_formula(parent):
    trainer = build(parent, "orpo")
    assert getattr(trainer, "ref_model", None) is None and "ref" not in trainer.model.peft_config  # reference-free
    perturb(trainer.model)
    batch = first_batch(trainer)
    c, r = cpo_answer_logps(trainer.model, batch, "chosen"), cpo_answer_logps(trainer.model, batch, "rejected")
    # Hong et al. 2024: odds(y) = P / (1 - P) with P the mean token probability (exp of mean log-prob);
    # loss = NLL(chosen) - lambda * log sigmoid(log odds(y_w) - log odds(y_l)), lambda = beta here.
    log_odds = (c - torch.log1p(-torch.exp(c))) - (r - torch.log1p(-torch.exp(r)))
    # TRL (like the ORPO authors' code) takes the NLL over the whole chosen sequence, prompt included.
    logps, mask = token_logps(trainer.model, batch["chosen_input_ids"], batch["chosen_attention_mask"],
                              batch["chosen_attention_mask"].bool())
    expected = -(logps.sum() / mask.sum()) - BETA * F.logsigmoid(log_odds).mean()
    torch.testing.assert_close(trainer_loss(trainer, batch), expected, rtol=1e-4, atol=1e-5)


def test_kto_loss_matches_the_formula(parent, reference):
    """Everything but the data is computed here: the KL rows (each prompt with another row's answer)
    are TRL's, their log-probs, the KL estimate and the loss are computed by hand."""
    w_good, w_bad = 1.3, 0.7
    trainer = build(parent, "kto", kto_desirable_weight=w_good, kto_undesirable_weight=w_bad)
    batch = first_batch(trainer)
    assert batch["label"].tolist() == [True, False, True, False]  # pairs split, desirable and undesirable mixed
    # Raise the log-probs of the KL rows (prompts with other rows' answers), so that the KL estimate is > 0.
    shift_log_probs(trainer.model, batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"], 0.05)
    logps, _ = answer_logps(trainer.model, batch)
    ref, _ = answer_logps(reference, batch)
    kl_logps, _ = answer_logps(trainer.model, batch, prefix="KL_")
    kl_ref, _ = answer_logps(reference, batch, prefix="KL_")
    # Ethayarajh et al. 2024: z0 = batch estimate of KL(policy || reference), clamped at 0, no gradient
    z0 = (kl_logps - kl_ref).mean().clamp(min=0)
    ratio = logps - ref
    good = batch["label"]
    per_row = torch.where(good, w_good * (1 - torch.sigmoid(BETA * (ratio - z0))),
                          w_bad * (1 - torch.sigmoid(BETA * (z0 - ratio))))
    assert z0 > 0 and ratio.abs().max() > 0.1
    torch.testing.assert_close(trainer_loss(trainer, batch), per_row.mean(), rtol=1e-4, atol=1e-5)
    metrics = logged(trainer)
    assert metrics["kl"] == pytest.approx(z0.item(), rel=1e-3)
    assert metrics["rewards/chosen"] == pytest.approx((BETA * ratio[good]).mean().item(), rel=1e-3)


@pytest.mark.parametrize("sections, key", [
    ({"dpo": {"loss_type": "orpo", "pref_ftx": 0.1}}, "dpo.pref_ftx: ORPO"),
    ({"dpo": {"loss_type": "kto", "pref_ftx": 0.1}}, "dpo.pref_ftx: TRL's KTO"),
    ({"dpo": {"loss_type": "ipo", "beta": 0.0}}, "dpo.beta:"),
    ({"dpo": {"loss_type": "kto"}, "training": {"per_device_train_batch_size": 1}},
     "training.per_device_train_batch_size:"),
])
def test_settings_a_loss_cannot_honour_are_refused_by_name(sections, key):
    with pytest.raises(ConfigError) as error:
        from_dict(tiny_config("dpo", **sections))  # refused when the config is read: before any run folder
    assert str(error.value).startswith(key)
    from_dict(tiny_config("dpo", dpo={"loss_type": "orpo", "beta": 0.0}))  # ORPO at beta 0 is plain SFT: allowed


@pytest.fixture(scope="module")
def engine_runs(parent) -> dict:
    """One short run per loss (2 steps), continuing the parent run, trained by the engine's own run()
    in this process: the same code as `python -m engine.train` but for the process, whose start (the
    imports: most of a tiny run's seconds) tests/engine/test_train.py covers."""
    from engine.train import run as train_in_process

    runs = {}
    for loss in LOSSES:
        run_dir = create_run(from_dict(tiny_config("dpo", init_from=str(parent), dpo={"loss_type": loss},
                                                   data={"max_samples": 8}, training={"max_steps": 2})))
        train_in_process(run_dir)
        runs[loss] = run_dir, run_dir.status()
    return runs


@pytest.mark.parametrize("loss", LOSSES)
def test_engine_run_logs_the_loss_family_metrics_at_every_step(parent, engine_runs, loss):
    run_dir, status = engine_runs[loss]
    logged = STAGES["dpo"].logged(run_dir.config().stage_options)  # what the stage table promises
    assert status.state == "completed", status.error
    weights = load_file(run_dir.adapter_dir / "adapter_model.safetensors")
    start = load_file(parent.adapter_dir / "adapter_model.safetensors")
    assert weights.keys() == start.keys()  # the continued adapter alone: no "ref" copy
    assert any(not torch.equal(weights[k], start[k]) for k in start)  # the loss reached the adapter
    train = [m for m in run_dir.metrics() if "loss" in m]
    assert [m["step"] for m in train] == [1, 2]
    for m in train:
        assert set(logged) <= set(m), sorted(m)
        assert all(math.isfinite(m[k]) for k in ("loss", *logged))
