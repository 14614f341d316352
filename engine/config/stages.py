"""The stage table: what each training stage is, in one place.

One ``Stage`` per stage, in workflow order: its options (a settings dataclass, the stage's section
of a config), what data it trains on, whether its weights write answers (a policy) or only score
them (a reward model), which run it continues by default, the runs its options name, the metrics
it logs, the charts that show them and the few that summarise a finished run in a table. Every
other module asks this table; adding a stage means one descriptor here and one trainer module,
``engine/stages/<name>.py``, with a ``run(cfg, run_dir, callbacks)`` function.

Import-light on purpose (dataclasses only): the web UI builds its forms from it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from engine.config.fields import ConfigError, opt

if TYPE_CHECKING:
    from engine.config.run import RunConfig


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


# ---- the metrics each stage logs (TRL's names verbatim; "eval_" in front in evaluation) ----------

# rewards/* are beta x the log-ratio to the reference, but for simpo and orpo (no reference) beta x
# the policy's mean log-prob per answer token; logps/* are summed over the answer (simpo and orpo: averaged).
DPO_REWARDS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
               "logps/chosen", "logps/rejected")
DPO_LOSS_METRICS = {
    "sigmoid": DPO_REWARDS, "ipo": DPO_REWARDS, "hinge": DPO_REWARDS, "robust": DPO_REWARDS,
    "dpop": DPO_REWARDS + ("dpop/penalty",),  # mean max(0, ref - policy log-prob of the chosen answer)
    "simpo": DPO_REWARDS + ("nll_loss",),  # nll_loss: the pref_ftx term before its weight (0 if unused)
    "orpo": DPO_REWARDS + ("nll_loss", "log_odds_ratio", "log_odds_chosen"),
    "kto": ("kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"),
}
# The terms a loss logs beside the rewards, in first-seen order: one chart shows whichever a run has.
DPO_LOSS_TERMS = tuple(dict.fromkeys(k for keys in DPO_LOSS_METRICS.values() for k in keys if k not in DPO_REWARDS))
RM_METRICS = ("accuracy", "margin", "min_reward", "mean_reward", "max_reward")  # TRL's RewardTrainer
# engine/stages/ppo.py, named after TRL's former PPO trainer
PPO_METRICS = ("objective/scores", "objective/kl", "objective/entropy", "objective/non_score_reward",
               "objective/rlhf_reward", "objective/kl_coef", "loss/policy_avg", "loss/value_avg",
               "policy/clipfrac_avg", "val/clipfrac_avg", "policy/approxkl_avg", "policy/entropy_avg",
               "val/ratio", "completions/mean_length", "completions/clipped_ratio")


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


# ---- charts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    """One live chart of a run: train curves of ``keys``, each with its eval_ twin dashed beside it."""

    title: str
    keys: tuple[str, ...]
    optional: bool = False  # filled only under some settings (a loss's own terms): hidden while empty


LOSS = Chart("loss", ("loss",))
LEARNING_RATE = Chart("learning rate", ("learning_rate",))
DEFAULT_SUMMARY = ("loss", "eval_loss")  # what a runs table shows of a stage that names nothing else


# ---- the table ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    options: type
    needs_pairs: bool  # trains on chosen/rejected pairs ("ranking": true datasets), not on any dataset
    row_kinds: tuple[str, ...]  # the dataset rows it trains on (engine.data.rows.row_kind)
    writes_answers: bool  # a policy (chat, export, evaluation, a parent); False: a reward model that scores
    parent_stage: str | None = None  # continues the newest run of this stage by default
    compared_with_parent: bool = False  # its parent is its frozen reference: evaluation compares the two
    run_settings: dict[str, str] = field(default_factory=dict)  # option -> stage of the run it names
    logged: Callable[[Any], tuple[str, ...]] = lambda options: ()  # keys of each train log line (with loss)
    charts: tuple[Chart, ...] = (LOSS, LEARNING_RATE)
    summary: tuple[str, ...] = DEFAULT_SUMMARY  # the final values a runs table shows
    check: Callable[[RunConfig], None] | None = None  # checks across settings, when a config is read
    single_process: str = ""  # why the stage cannot run distributed (engine.config.run.check_distributed); "": it can

    @property
    def a_run(self) -> str:
        """'an sft run', 'a dpo run': for messages."""
        return f"{'an' if self.name[0] in 'aefhilmnorsx' else 'a'} {self.name} run"


# The stage every other one continues, and the label evaluation measures win rates against.
BASE_POLICY = "sft"

STAGES: dict[str, Stage] = {s.name: s for s in (  # workflow order
    Stage("sft", "SFT (supervised fine-tuning)", SFTOptions, needs_pairs=False, row_kinds=("sft", "pairs", "text"),
          writes_answers=True),
    Stage("rm", "RM (reward model)", RMOptions, needs_pairs=True, row_kinds=("pairs",), writes_answers=False,
          parent_stage=BASE_POLICY,
          logged=lambda options: RM_METRICS,
          charts=(LOSS, LEARNING_RATE, Chart("accuracy (chosen scored above rejected)", ("accuracy",)),
                  Chart("margin (chosen - rejected score)", ("margin",)),
                  Chart("scores (min / mean / max)", ("min_reward", "mean_reward", "max_reward"))),
          summary=("loss", "accuracy", "eval_accuracy", "eval_margin")),
    Stage("ppo", "PPO (RLHF with the reward model)", PPOOptions, needs_pairs=False, row_kinds=("sft", "pairs"),
          writes_answers=True,
          parent_stage=BASE_POLICY, compared_with_parent=True, run_settings={"reward_run": "rm"},
          single_process="its own rollout-and-update loop (engine.stages.ppo) runs in one process",
          logged=lambda options: PPO_METRICS,
          charts=(Chart("reward-model score of the answers", ("objective/scores",)),
                  Chart("KL to the reference (nats per answer)", ("objective/kl",)), LOSS,
                  Chart("policy and value loss", ("loss/policy_avg", "loss/value_avg")),
                  Chart("entropy (per token)", ("policy/entropy_avg",)),
                  Chart("clip fraction and approx. KL", ("policy/clipfrac_avg", "val/clipfrac_avg",
                                                         "policy/approxkl_avg")),
                  Chart("answer length (tokens)", ("completions/mean_length",)), LEARNING_RATE,
                  Chart("kl_coef", ("objective/kl_coef",), optional=True)),
          summary=("objective/scores", "objective/kl", "eval_objective/scores", "eval_objective/kl")),
    Stage("dpo", "DPO (direct preference optimisation) and its loss family", DPOOptions, needs_pairs=True,
          row_kinds=("pairs", "unpaired"), writes_answers=True, parent_stage=BASE_POLICY,
          compared_with_parent=True,
          logged=lambda options: DPO_LOSS_METRICS[options.loss_type],
          charts=(LOSS, LEARNING_RATE, Chart("rewards (chosen vs rejected)", ("rewards/chosen", "rewards/rejected")),
                  Chart("rewards/accuracies", ("rewards/accuracies",)),
                  Chart("rewards/margins", ("rewards/margins",)),
                  Chart("log-probabilities (chosen vs rejected)", ("logps/chosen", "logps/rejected")),
                  Chart("terms of the loss", DPO_LOSS_TERMS, optional=True)),
          summary=("loss", "rewards/accuracies", "rewards/margins", "eval_rewards/accuracies",
                   "eval_rewards/margins"),
          check=check_dpo_options),
)}


def policy_stages() -> tuple[str, ...]:
    """Stages whose weights write answers: what chat, export, evaluation and parents offer."""
    return tuple(name for name, s in STAGES.items() if s.writes_answers)


def reward_model_stages() -> tuple[str, ...]:
    """Stages whose weights score answers: what PPO and evaluation are judged by."""
    return tuple(name for name, s in STAGES.items() if not s.writes_answers)


def stage_of(name: str | None) -> Stage | None:
    """The descriptor of a stage name (None for a name this version does not know: an old run)."""
    return STAGES.get(name or "")
