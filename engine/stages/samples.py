"""Answers to a few fixed prompts during training: the model itself, watched beside its metrics.

At step 0 (the starting model, the baseline), at the run's quarters, about ten times a run
(``samples.every``; fewer when answering would take more than a tenth of the run's time) and at the
end, the policy answers the run's sample prompts greedily: ``samples.count`` of them, spread evenly
over the eval set (else the training set), or the user's own ``samples.prompts``.

The checks at the quarters land on every run, whatever they cost: a model that starts looping
halfway is caught before its weights are saved. What the budget changes is their length: the start
and the end are answered in full (``samples.max_new_tokens``), the checks between them are cut short
enough (down to MIN_CHECK_TOKENS) for all of them to fit a tenth of the run's training time, from
what the start's answers cost and how long a step takes. The start's answers are the same for every
run that starts from the same weights with the same prompts: a later such run reads them
(engine.stages.start_answers).

Each answer is one line of samples.jsonl: ``step``, ``prompt``, ``answer``, ``tokens`` (generated
before the turn ended), ``ended`` (False: cut at ``limit``), ``limit`` (the tokens it was allowed)
and, for a run trained against a reference (DPO, PPO), ``kl``: the policy's log-ratio to the
reference on its own answer, in nats per token. engine.runs.degeneration reads them for its alarms;
the Train and Runs tabs show them.
"""

from __future__ import annotations

import math
import time

import torch

from engine.config import STAGES, RunConfig, Sampling
from engine.data.rows import load_splits
from engine.inference.generate import answer_logprobs, generate, user_turn
from engine.runs.folder import RunFolder
from engine.stages import start_answers

# The automatic schedule's budget: sampling takes at most about this share of the run's time.
BUDGET = 0.1
CHECKS = 3  # checks between the start and the end on any run: at its quarters
MIN_CHECK_TOKENS = 24  # the shortest answer a check is cut to: a loop shows within it ("1. 1. 1." is 2 tokens a round)


def check_steps(max_steps: int) -> set[int]:
    """The steps checked on every run besides the start and the end: its quarters (for a run too
    short to have them, every step in between)."""
    marks = {int(k * max_steps / (CHECKS + 1) + 0.5) for k in range(1, CHECKS + 1)}
    return {step for step in marks if 0 < step < max_steps}


def sample_prompts(cfg: RunConfig) -> list[list[dict]]:
    """The conversations the run answers while it trains ([] for a stage that writes no answers)."""
    opts, stage = cfg.samples, STAGES[cfg.stage]
    if opts.count == 0 or not stage.writes_answers:
        return []
    own = [line.strip() for line in opts.prompts.splitlines() if line.strip()]
    if own:
        return [user_turn(line) for line in own]
    train, held_out = load_splits(cfg, preference=stage.needs_pairs)
    rows = held_out if held_out is not None and len(held_out) else train
    if "prompt" not in rows.column_names:  # plain text: nothing to answer unless the user gives prompts
        return []
    count = min(opts.count, len(rows))
    # spread over the set, which is often grouped by topic: three prompts on one subject would hide
    # answers collapsing into one template across subjects
    return [rows[i * len(rows) // count]["prompt"] for i in range(count)]


def reference(model):
    """A context in which ``model`` is its reference, TRL's convention: the frozen "ref" adapter when
    there is one (a run continuing its parent's adapter), else the adapters off (the base model);
    None for a model without adapters (a full fine-tune keeps its reference elsewhere)."""
    if not hasattr(model, "peft_config"):
        return None
    from trl.trainer.utils import use_adapter

    return use_adapter(model, "ref" if "ref" in model.peft_config else None)


@torch.no_grad()
def drift(model, gen) -> list[float] | None:
    """Per answer, the mean log-ratio policy / reference over its tokens (None without a reference)."""
    ctx = reference(model)
    if ctx is None:
        return None
    mask = torch.zeros_like(gen.answer_ids, dtype=torch.long)
    for row, n in enumerate(gen.lengths):
        mask[row, :max(n, 1)] = 1
    attention = torch.cat([gen.prompt["attention_mask"], mask], 1)
    prompt_len = gen.prompt["input_ids"].shape[1]
    policy, _, _ = answer_logprobs(model, gen.sequences, attention, prompt_len)
    with ctx:
        ref, _, _ = answer_logprobs(model, gen.sequences, attention, prompt_len)
    return (((policy - ref) * mask).sum(1) / mask.sum(1)).tolist()


class Sampler:
    """The run's sample prompts, when to answer them and how long; ``records`` holds every answer so far."""

    def __init__(self, run: RunFolder, cfg: RunConfig):
        self.run, self.cfg, self.opts = run, cfg, cfg.samples
        self.prompts: list[list[dict]] = []
        self.records: list[dict] = []
        self.every = 1
        self.max_steps = 0
        self.marks: set[int] = set()
        self.last_step: int | None = None
        self.seconds = 0.0  # spent answering, to report what sampling costs
        self.full_cost = 0.0  # seconds the last answering in full (samples.max_new_tokens) took ...
        self.full_tokens = 1  # ... for answers this long at most
        self.last_cost = 0.0  # seconds the last answering took
        self.clock = time.monotonic  # seconds; a test sets its own to make the budget exact
        self.start = self.last_end = self.clock()
        self.first_step = 0  # where this process started training (a resumed run starts later)
        self.reused = False  # the last answers were an earlier run's (engine.stages.start_answers)

    @classmethod
    def for_run(cls, run: RunFolder, cfg: RunConfig) -> Sampler | None:
        """A sampler, or None for a run that takes no samples (a reward model, samples.count 0)."""
        stage = STAGES[cfg.stage]
        if not stage.writes_answers or (cfg.samples.count == 0 and not cfg.samples.prompts.strip()):
            return None
        return cls(run, cfg)

    @property
    def kl_bound(self) -> float | None:
        return self.opts.kl_bound if STAGES[self.cfg.stage].compared_with_parent else None

    def plan(self, max_steps: int, first_step: int = 0) -> None:
        self.prompts = sample_prompts(self.cfg)
        self.max_steps, self.first_step = max_steps, first_step
        self.every = self.opts.every or max(1, math.ceil(max_steps / 10))
        self.marks = check_steps(max_steps)
        self.start = self.last_end = self.clock()

    def due(self, step: int, max_steps: int) -> bool:
        if not self.prompts or step == self.last_step:
            return False
        if step >= max_steps or step == 0 or step in self.marks:
            return True
        return step % self.every == 0 and (bool(self.opts.every) or self.affordable())

    def next_check(self, step: int) -> int | None:
        """The step of the next check that will surely be taken (an affordable one may come sooner)."""
        if not self.prompts:
            return None
        sure = [s for s in self.marks if s > step] + [self.max_steps]
        if self.opts.every:
            sure.append((step // self.every + 1) * self.every)
        return min(s for s in sure if s > step) if step < self.max_steps else None

    def affordable(self) -> bool:
        """The automatic schedule skips a due step until the training since the last answers took
        (1 - BUDGET) / BUDGET times what answering cost, so a short run on a slow machine is not
        spent mostly answering (a run ten steps long would otherwise answer at every step)."""
        return (self.clock() - self.last_end) * BUDGET >= self.last_cost * (1 - BUDGET)

    def step_seconds(self, step: int) -> float | None:
        """Training seconds per step so far, answering excluded (None before the first step)."""
        done = step - self.first_step
        return (self.clock() - self.start - self.seconds) / done if done > 0 else None

    def limit(self, step: int) -> int:
        """The tokens an answer may have at ``step``: in full at the start and the end (and with an
        explicit samples.every); between them, short enough for the start, the end and the quarters'
        checks to fit BUDGET of the run's training time (never under MIN_CHECK_TOKENS)."""
        full = self.opts.max_new_tokens
        per_step = self.step_seconds(step)
        if step == 0 or step >= self.max_steps or self.opts.every or not per_step or not self.full_cost:
            return full
        spare = BUDGET * self.max_steps * per_step - 2 * self.full_cost
        tokens = spare / max(1, len(self.marks)) / (self.full_cost / self.full_tokens)
        return int(min(full, max(MIN_CHECK_TOKENS, tokens)))

    def answer(self, step: int, model, tokenizer, limit: int) -> list[dict]:
        """The prompts answered by the model as it is now (its reference's log-ratio with them)."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                gen = generate(model, tokenizer, self.prompts, Sampling(max_new_tokens=limit))
                kls = drift(model, gen) if self.kl_bound is not None else None
        finally:
            model.train(was_training)
        return [{"step": step, "prompt": conv[-1]["content"], "answer": text, "tokens": n, "ended": ended,
                 "limit": limit, **({"kl": kls[i]} if kls is not None else {})}
                for i, (conv, text, n, ended) in enumerate(zip(self.prompts, gen.texts, gen.lengths, gen.ended))]

    def take(self, step: int, model, tokenizer) -> list[dict]:
        """Answer the prompts with the model as it is now; the records are appended to samples.jsonl.
        The starting model's answers come from the cache when a run started the same way
        (engine.stages.start_answers): they cost nothing, and the budget counts what they cost then."""
        start, limit = self.clock(), self.limit(step)
        key = start_answers.start_key(self.cfg, self.prompts, str(getattr(model, "dtype", "")), limit) \
            if step == 0 else None
        kept = start_answers.load(self.run.path.parent, key)
        records = kept["records"] if kept else self.answer(step, model, tokenizer, limit)
        self.reused = bool(kept)
        self.last_step, self.last_end = step, self.clock()
        spent = self.last_end - start
        if not kept:
            start_answers.keep(self.run.path.parent, key, records, spent)
        self.run.append_samples(records)
        self.records += records
        # Kept answers cost what answering them cost then, for the schedule and the budget: a cache hit
        # does not bring the next optional check forward, nor lengthen the checks between the quarters.
        self.last_cost = kept["seconds"] if kept else spent
        if limit == self.opts.max_new_tokens:
            self.full_cost, self.full_tokens = self.last_cost, max(1, *(r["tokens"] for r in records))
        self.seconds += spent
        return records
