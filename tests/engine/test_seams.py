"""engine.seams: every reach into a library's private code, each checked at start-up, falling back to
the library's own path when a newer library lacks it; and training.speedups, which turns the speed-ups
off without changing what a run learns. The only tests that may touch the libraries' private names."""

from __future__ import annotations

import logging

import pytest
import torch
import trl.trainer.utils as trl_utils
from trl import DPOTrainer
from trl.trainer.utils import add_fused_lm_head

from engine import seams
from engine.config import from_dict
from engine.models.loader import causal_lm
from engine.runs.folder import create_run
from engine.runs.process import start_engine, wait
from tests.helpers import tiny_config


@pytest.fixture
def fresh_checks():
    """Seam checks made again in this test (they are cached per process), and again after it."""
    seams.missing.cache_clear()
    yield
    seams.missing.cache_clear()


def fused_log_probs(model, ids, labels, monkeypatch, compact: bool):
    """The fused head's per-token log-probs, and how many positions it projected through the vocabulary."""
    seen = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):
        seen.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: compact)  # monkeypatch restores TRL's rule
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    return out.log_probs, seen[0]


def test_completion_only_scoring_gives_the_same_log_probs_for_less_work(tiny_model, monkeypatch):
    model = causal_lm(tiny_model, torch.float32).eval()
    add_fused_lm_head(model)
    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :16] = -100  # the prompt: 16 positions of 24 carry no label
    everything, scored_all = fused_log_probs(model, ids, labels, monkeypatch, compact=False)
    completions, scored_some = fused_log_probs(model, ids, labels, monkeypatch, compact=True)
    assert scored_all == 2 * 23 and scored_some == 2 * 8
    torch.testing.assert_close(completions, everything, rtol=0, atol=1e-5)
    assert completions[:, :15].abs().sum() == 0 and completions[:, 15:].abs().sum() > 0


def test_labelled_positions_go_on_once_and_off_again(monkeypatch, fresh_checks):
    trls_rule = lambda device: False  # noqa: E731 - stands for TRL's own
    monkeypatch.setattr(trl_utils, "_use_triton", trls_rule)
    assert seams.score_labelled_positions_only(True) and seams.score_labelled_positions_only(True)
    assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton(torch.device("meta")) is False
    assert trl_utils._use_triton.original is trls_rule  # wrapped once, not twice
    assert not seams.score_labelled_positions_only(False)
    assert trl_utils._use_triton is trls_rule  # TRL's own rule back


def test_every_seam_names_its_library_version_reason_and_is_there(fresh_checks):
    for name, seam in seams.SEAMS.items():
        assert seam.library and seam.checked and seam.touches and seam.reason and seam.public, name
        assert seam.present(), name
    assert seams.check() == []
    assert "speed-ups on (labelled_positions, reference_pass, packed_pairs, packed_adapters" in seams.describe(True)
    assert seams.describe(False).startswith("speed-ups off")


def test_a_missing_seam_is_named_with_the_versions_and_the_librarys_own_path_runs(monkeypatch, fresh_checks,
                                                                                   caplog):
    """A newer TRL without the private names: the run logs what is gone and takes TRL's path."""
    from engine import train

    monkeypatch.delattr(trl_utils, "_use_triton")
    monkeypatch.delattr(DPOTrainer, "_precompute_ref_logps")
    problem = seams.missing("labelled_positions")
    assert problem == (f"trl {seams.installed('trl')} no longer has trl.trainer.utils._use_triton (checked against "
                       "trl 1.16.0): the library's own path runs instead (none: the choice is a private function "
                       "of TRL's)")
    assert not seams.score_labelled_positions_only(True)
    assert seams.with_reference_pass(DPOTrainer, lambda *a: None) is DPOTrainer  # TRL's own reference pass
    assert "labelled_positions" not in seams.describe(True) and "reference_pass" not in seams.describe(True)
    with caplog.at_level(logging.WARNING, logger="engine"):
        train.log_code_paths(from_dict(tiny_config("dpo")))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("(checked against trl 1.16.0)" in w for w in warned)


def test_a_loss_that_needs_a_missing_seam_refuses_by_name(monkeypatch, fresh_checks):
    monkeypatch.delattr(DPOTrainer, "_compute_loss")
    with pytest.raises(RuntimeError, match=r"no longer has DPOTrainer._compute_loss.*what needs it cannot run"):
        seams.with_loss_term(DPOTrainer, lambda *a: None)


def test_the_speedups_switch_for_chat_reads_on_or_off(monkeypatch):
    monkeypatch.delenv(seams.SPEEDUPS_ENV, raising=False)
    assert seams.speedups_default()
    monkeypatch.setenv(seams.SPEEDUPS_ENV, "off")
    assert not seams.speedups_default()
    monkeypatch.setenv(seams.SPEEDUPS_ENV, "fast")
    with pytest.raises(ValueError, match="WORKBENCH_SPEEDUPS='fast': use on or off"):
        seams.speedups_default()


def train_lines(speedups: bool) -> tuple[list[dict], str]:
    cfg = tiny_config("dpo", model={"name_or_path": "tiny", "dtype": "float32"}, samples={"count": 0},
                      training={"speedups": speedups})
    run = create_run(from_dict(cfg))
    status = wait(run, start_engine(run), interval=0.2)
    assert status.state == "completed", status.error
    return [r for r in run.metrics() if "loss" in r], run.log_file.read_text()


def test_dpo_learns_the_same_with_the_speedups_off_as_on(tiny_model):
    """Off runs TRL's own code (every position scored, 2 padded rows per pair, TRL's reference pass);
    every metric TRL logs is the same as with the packed pairs, the cache and the compact LM head."""
    on, on_log = train_lines(True)
    off, off_log = train_lines(False)
    assert "speed-ups on (labelled_positions, reference_pass, packed_pairs" in on_log
    assert "speed-ups off (training.speedups: false): TRL's and PEFT's own code paths" in off_log
    assert "cached as" in on_log and "cached as" not in off_log
    assert [r["step"] for r in on] == [r["step"] for r in off] == [1, 2, 3, 4]
    keys = [k for k in on[0] if k.startswith(("loss", "rewards/", "logps/", "logits/", "grad_norm"))]
    assert {"loss", "rewards/margins", "rewards/accuracies", "logps/chosen"} <= set(keys)
    for fast, plain in zip(on, off):
        for key in keys:
            assert fast[key] == pytest.approx(plain[key], rel=1e-4, abs=1e-5), (fast["step"], key)
    assert on[-1]["rewards/margins"] != 0  # it learned: not a comparison of constants
