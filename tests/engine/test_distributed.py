"""Runs on two processes (distributed.backend ddp, gloo on CPU) through the real launch path:
engine.runs.process.start_engine → `accelerate launch` → two engine.train ranks on the tiny model."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest
import yaml
from safetensors.torch import load_file

from engine.config import from_dict
from engine.runs.folder import RunFolder, create_run
from engine.runs.process import engine_ranks, start_engine, stop, wait
from engine.runs.status import State
from tests.helpers import tiny_config

TWO_RANKS = {"backend": "ddp", "num_processes": 2}


def train(cfg: dict, timeout: float = 240) -> tuple[RunFolder, int]:
    run = create_run(from_dict(cfg))
    proc = start_engine(run)
    status = wait(run, proc, interval=0.2)
    code = proc.wait(timeout=timeout)
    assert status.state == State.COMPLETED, run.log_file.read_text()[-3000:]
    return run, code


def rank_digests(run: RunFolder) -> dict[int, str]:
    """Each rank's sha256 of its trained weights, as engine.log has them."""
    found = re.findall(r"\[rank (\d)\]: trained weights sha256 (\w+)", run.log_file.read_text())
    return {int(rank): digest for rank, digest in found}


def train_lines(run: RunFolder) -> list[dict]:
    return [r for r in run.metrics() if "loss" in r]


def test_sft_on_two_ranks_stays_in_step_and_rank_0_alone_writes(tiny_model):
    cfg = tiny_config("sft", distributed=TWO_RANKS, training={"max_steps": 4, "per_device_train_batch_size": 2},
                      samples={"count": 1})
    run, code = train(cfg)
    assert code == 0
    digests = rank_digests(run)
    assert set(digests) == {0, 1} and digests[0] == digests[1]  # both ranks ended with the same weights
    launcher = yaml.safe_load(run.accelerate_file.read_text())
    assert launcher["distributed_type"] == "MULTI_GPU" and launcher["num_processes"] == 2
    # one writer: a line per logged step, the samples once per sample step, one adapter
    assert [r["step"] for r in train_lines(run)] == [1, 2, 3, 4]
    samples = run.samples()
    assert len(samples) == len({(s["step"], s["prompt"]) for s in samples}) >= 2
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    assert "rank 1" not in (run.status().error or "")
    # every train record counts the tokens of both ranks' batches
    assert train_lines(run)[-1]["num_input_tokens_seen"] > 0


def test_dpo_on_two_ranks_logs_the_means_of_both_ranks(tiny_model):
    """Two ranks of 2 pairs a step see the batches one process sees with 2 pairs and 2 accumulation
    steps (the ranks take every other batch of the same order): the same updates, and so the same
    logged loss and rewards/* only if rank 0 writes the mean over both ranks' pairs, not its own."""
    shared = dict(model={"name_or_path": "tiny", "dtype": "float32"}, samples={"count": 0})
    one = tiny_config("dpo", **shared, training={"max_steps": 3, "per_device_train_batch_size": 2,
                                                  "gradient_accumulation_steps": 2})
    two = tiny_config("dpo", **shared, distributed=TWO_RANKS,
                      training={"max_steps": 3, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1})
    single, _ = train(one)
    ranked, code = train(two)
    assert code == 0
    digests = rank_digests(ranked)
    assert set(digests) == {0, 1} and digests[0] == digests[1]
    keys = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen")
    expected, logged = train_lines(single), train_lines(ranked)
    assert [r["step"] for r in logged] == [1, 2, 3]
    for want, got in zip(expected, logged):
        for key in keys:
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-5), (got["step"], key)
    assert logged[-1]["rewards/margins"] != 0  # it learned: the comparison is not of constants
    a = load_file(single.adapter_dir / "adapter_model.safetensors")
    b = load_file(ranked.adapter_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all((a[k] - b[k]).abs().max() < 1e-4 for k in a)


def wait_for(condition, timeout: float = 120, what: str = "") -> None:
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def start_long_run():
    """(run, launcher) of a 5000-step SFT run on two ranks, once it has trained two steps."""
    cfg = tiny_config("sft", distributed=TWO_RANKS, training={"max_steps": 5000, "save_minutes": 0.0},
                      samples={"count": 0})
    run = create_run(from_dict(cfg))
    proc = start_engine(run)
    wait_for(lambda: (run.status().step or 0) >= 2, what="two steps")
    return run, proc


def test_stop_ends_both_ranks_at_the_same_step_with_the_adapter_saved(tiny_model):
    run, proc = start_long_run()
    ranks = engine_ranks(proc.pid)
    assert len(ranks) == 2 and run.status().pid == proc.pid  # status names the launcher
    assert stop(run)
    status = wait(run, proc, interval=0.2)
    assert proc.wait(timeout=60) == 0
    assert status.state == State.STOPPED and status.step < 5000, status
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in ranks)
    digests = rank_digests(run)
    assert set(digests) == {0, 1} and digests[0] == digests[1]  # stopped together, after the same step
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def test_a_rank_that_dies_fails_the_run_with_the_launchers_report(tiny_model):
    """A rank killed outright records nothing; rank 0, losing its peer, records nothing either (its error
    is a consequence): the run is settled from the launcher's report of how rank 1 died."""
    run, proc = start_long_run()
    rank_1 = next(p for p in engine_ranks(proc.pid)
                  if psutil.Process(p).environ().get("RANK") == "1")
    os.kill(rank_1, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    status = wait(run, proc, interval=0.2)
    assert proc.wait(timeout=90) != 0
    assert status.state == State.FAILED, status
    assert status.error.startswith("rank 1 of 2 was killed by SIGKILL (signal 9)"), status.error
    assert run.status() == status  # written down, not only shown
    log = run.log_file.read_text()
    assert re.search(r"rank\s*:\s*1 ", log) and "SIGKILL" in log, log[-3000:]
    assert not psutil.pid_exists(rank_1) or psutil.Process(rank_1).status() == psutil.STATUS_ZOMBIE


# Rank 1's import of the stage raises, as a rank-local fault would. ORDER decides, deterministically, which
# rank moves first. "before": rank 0 is held at start-up until rank 1 has recorded its failure, and rank 1
# is held at exit until rank 0 has tried to write "running" and given up (else the launcher would kill
# rank 0 first); "after": rank 1 is held until rank 0 has written "running", so it fails while rank 0
# waits for it to join the process group.
RANK_FAULT = """import atexit, json, os, sys, time
RUN = os.environ["FAULT_RUN_DIR"]


def hold_until(found):
    deadline = time.time() + 120
    while time.time() < deadline and not found():
        time.sleep(0.05)


def state():
    try:
        with open(os.path.join(RUN, "status.json")) as f:
            return json.load(f).get("state")
    except (OSError, ValueError):
        return None


def rank_0_gave_up():
    with open(os.path.join(RUN, "engine.log")) as f:
        return "[rank 0]: the run had already ended" in f.read()


class RankOneFault:
    def find_spec(self, name, path=None, target=None):
        if name == "engine.stages.sft":
            raise OSError("injected fault: rank 1 cannot read its data")


rank, order = os.environ.get("RANK"), os.environ["FAULT_ORDER"]
if rank == "1":
    sys.meta_path.insert(0, RankOneFault())
    if order == "after":
        hold_until(lambda: state() == "running")
    else:
        atexit.register(hold_until, rank_0_gave_up)
elif rank == "0" and order == "before":
    hold_until(lambda: state() == "failed")
"""


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_rank_whose_code_fails_fails_the_run_with_its_own_error(tiny_model, tmp_path, monkeypatch, order):
    """Whichever rank writes first, the run ends failed with rank 1's own error (never rank 0's "running"
    over it, never crashed), and rank 0 ends at once rather than when the launcher kills it."""
    (tmp_path / "sitecustomize.py").write_text(RANK_FAULT)
    cfg = tiny_config("sft", distributed=TWO_RANKS, samples={"count": 0})
    run = create_run(from_dict(cfg))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("FAULT_RUN_DIR", str(run.path))
    monkeypatch.setenv("FAULT_ORDER", order)
    proc = start_engine(run)
    status = wait(run, proc, interval=0.2)
    assert proc.wait(timeout=90) != 0
    assert status.state == State.FAILED, status
    assert status.error == "rank 1 of 2: OSError: injected fault: rank 1 cannot read its data", status.error
    log = run.log_file.read_text()
    assert "[rank 1]: run failed:\nTraceback" in log
    rank_0_ended = {"before": "[rank 0]: the run had already ended (failed: rank 1 of 2: OSError",
                    "after": "[rank 0]: rank 0 ends: rank 1 of 2: OSError"}[order]
    assert rank_0_ended in log, log[-3000:]
    assert "Unable to shutdown process" not in log  # the launcher never had to kill rank 0
